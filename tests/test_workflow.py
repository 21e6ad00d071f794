"""``faceunlearn unlearn`` / ``faceunlearn.unlearn`` and ``faceunlearn.audit_models``: the input checks (one line each),
the recipe's arguments, and (slow tier) one command end to end on generated faces, whose exported model audited as a
pair of ONNX files gives the run's own audit numbers."""
import json
from pathlib import Path

import numpy as np
import pytest

from faceunlearn.workflow.inputs import (MIN_FORGET_PHOTOS, UnlearnInputError, aligned_folders, aligned_option, check_faces,
                                         check_request)
from faceunlearn.workflow.run import data_overrides, model_overrides

REPO = Path(__file__).resolve().parents[1]


def _folders(root: Path, people: dict[str, int]) -> Path:
    for name, count in people.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            (root / name / f"{index}.png").write_bytes(b"not read by the checks")
    return root


def test_bad_requests_get_one_line_each(tmp_path):
    people = _folders(tmp_path / "people", {"alice": 6, "bob": 3, "carol": 5, "dave": 5})
    heldout = _folders(tmp_path / "heldout", {"erin": 4, "alice": 4})
    cases = [
        (["zoe"], None, r"unknown person zoe: no such folder in .*people \(its people: alice, bob, carol, dave\)"),
        (["bob"], None, rf"too few photos of bob \(3\): a person to forget needs at least {MIN_FORGET_PHOTOS}"),
        (["alice"], heldout, r"alice is both to forget \(--forget\) and held out"),
        (["alice", "alice"], None, "--forget names alice more than once"),
        (["alice", "carol", "dave"], None, "holds 1 people besides those to forget: at least 2"),
        ([], None, "--forget names nobody"),
    ]
    for forget, held, message in cases:
        with pytest.raises(UnlearnInputError, match=message) as raised:
            check_request(people, forget, held)
        assert "\n" not in str(raised.value)
    with pytest.raises(UnlearnInputError, match="--people .*nowhere: no such folder"):
        check_request(tmp_path / "nowhere", ["alice"])
    request = check_request(people, ["alice"], tmp_path / "heldout" / "..")  # a folder whose person folders are people/heldout
    assert request.kept == ["bob", "carol", "dave"] and request.people["alice"] == 6
    # after detection, photos without a face do not count
    request = check_request(people, ["alice"])
    with pytest.raises(UnlearnInputError, match=r"too few faces found for alice \(3 of 6 photos\)"):
        check_faces(request, {"alice": 3, "bob": 3, "carol": 5, "dave": 5}, {})
    check_faces(request, {"alice": 4, "bob": 3, "carol": 5, "dave": 0}, {})


def test_aligned_names_the_folders_that_skip_detection():
    from faceunlearn.commands.unlearn import build_parser

    def parsed(*words):
        argv = ["--model", "m.onnx", "--people", "p", "--forget", "a", "--out", "o", *words]
        return aligned_folders(aligned_option(build_parser().parse_args(argv).aligned))

    assert parsed() == frozenset()
    assert parsed("--aligned") == {"people", "heldout"}
    assert parsed("--aligned", "heldout") == {"heldout"}  # e.g. ORL photos to detect, insightface crops held out
    assert aligned_folders(True) == {"people", "heldout"} and aligned_folders("people") == {"people"}
    with pytest.raises(UnlearnInputError, match="among people, heldout, got forget"):
        aligned_folders(["forget"])
    with pytest.raises(SystemExit):
        parsed("--aligned", "everything")


def test_the_recipe_gets_batches_from_the_head_count_and_ids_not_names(tmp_path):
    two = data_overrides(tmp_path / "people", tmp_path / "heldout", [3, 7], num_kept_faces=12)
    value = dict(zip(two[::2], two[1::2]))
    assert value["--data.batch_size"] == "8" and value["--data.images_per_identity"] == "4"  # P = 2 people x K = 4
    assert value["--data.retain_batch_size"] == "12"  # no larger than the kept people's photos
    assert json.loads(value["--data.forget_identities"]) == [3, 7]  # ids: no name enters a config or checkpoint
    assert json.loads(value["--data.extra_sources"]) == {"heldout": str(tmp_path / "heldout")}
    seven = dict(zip(*[iter(data_overrides(tmp_path / "p", None, list(range(7)), 500))] * 2))
    assert seven["--data.batch_size"] == "20" and seven["--data.retain_batch_size"] == "20"  # the recipe's 5 x 4
    assert seven["--data.extra_sources"] == "null" and seven["--evaluation"].endswith("own_evaluation_no_heldout.yaml")
    with pytest.raises(UnlearnInputError, match="no such file"):
        model_overrides(str(tmp_path / "missing.onnx"), None)
    weights = tmp_path / "backbone.pth"
    weights.write_bytes(b"")
    with pytest.raises(UnlearnInputError, match="name its architecture with --backbone"):
        model_overrides(str(weights), None)
    assert model_overrides(str(weights), "iresnet50")[-2:] == ["--model.init_args.backbone", "iresnet50"]
    assert model_overrides("sface", None) == ["--model.init_args.init_weights", "sface"]


def test_the_api_is_importable_from_the_top_and_lazy():
    import subprocess
    import sys

    code = ("import sys, faceunlearn; assert 'torch' not in sys.modules; "
            "from faceunlearn import unlearn, audit_models, UnlearnResult; print(unlearn.__module__, audit_models.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["faceunlearn.workflow.run", "faceunlearn.workflow.pair"]


def write_photo_folders(root: Path) -> Path:
    """Generated faces as PNG files in person folders (aligned 112x112; the first two people are alice and bob), and a
    tiny ONNX recognizer."""
    from PIL import Image

    from faceunlearn.data.packed import PackedFaces
    from faceunlearn.data.synthetic import build_synthetic_dataset
    from tests.onnx_fixtures import write_tiny_recognizer

    build_synthetic_dataset(root / "pack", num_train_identities=10, images_per_train_identity=8, num_holdout_identities=6,
                            holdout_frontal=3, holdout_profile=1, num_distractor_identities=2, images_per_distractor=2, seed=0)
    pack = PackedFaces.open(root / "pack")
    names = {0: "alice", 1: "bob"}
    for split, folder in (("train", "photos/people"), ("holdout", "photos/heldout")):
        for row in pack.select(split):
            identity = int(pack.identities[row])
            person = root / folder / (names.get(identity) if split == "train" and identity in names else f"person{identity:02d}")
            person.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.asarray(pack.images[row])).save(person / f"{int(pack.image_ids[row])}.png")
    return write_tiny_recognizer(root / "my_recognizer.onnx")


def readme_python_block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start:text.index("```", start)]


@pytest.mark.slow
def test_the_readme_block_unlearns_audits_exports_purges_and_reports(tmp_path, monkeypatch, capsys):
    """The README's Python block, run as written in a folder laid out as it says; then what the run left."""
    import faceunlearn
    from faceunlearn.workflow.pair import audit_models
    from faceunlearn.workflow.run import unlearn

    model = write_photo_folders(tmp_path)
    monkeypatch.chdir(tmp_path)
    # what the block cannot know about this test's inputs: the generated faces are crops already (no detection), and the
    # tiny random recognizer finds everyone alike (cosines up to 0.95), so the disjointness threshold is raised
    test_only = {"aligned": True, "progress": False}
    monkeypatch.setattr(faceunlearn, "unlearn", lambda *a, **k: unlearn(*a, **k, disjoint_threshold=0.99, **test_only),
                        raising=False)
    monkeypatch.setattr(faceunlearn, "audit_models", lambda *a, **k: audit_models(*a, **k, **test_only), raising=False)
    namespace = {}
    exec(compile(readme_python_block(), "README.md", "exec"), namespace)
    result, pair, out = namespace["result"], namespace["pair"], tmp_path / "unlearned"
    assert capsys.readouterr().out.count(" -> ") == len(result.metrics)
    assert result.model == Path("unlearned/model.onnx") and result.model.stat().st_size > 10_000
    report = result.report.read_text()
    assert "**Forgotten:** 2 people (16 photos with a face)" in report and "alice" not in report  # counts, never names
    assert "alice" not in result.model_card.read_text()
    forget = result.metrics["retrieval mAP"]
    assert forget["after"] < forget["before"] and forget["chance"] < forget["after"]  # it forgot, down towards chance
    for label in ("relearning, 100 steps, strongest lr: mAP", "membership inference AUC (50 = chance)",
                  "held-out people: verification TAR @ FAR 1e-3"):
        assert result.metrics[label]["before"] is not None and result.metrics[label]["after"] is not None, label
    # purged: no forget embedding, no people crops, no head row of a forgotten person, no name in any run file
    assert not list((out / "work/packs").glob("train-*")) and list((out / "work/packs").glob("holdout-*"))
    import torch

    checkpoint = torch.load(out / "work/runs/own_disp/seed0/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["state_dict"]["head.weight"][[0, 1]].abs().sum() == 0 and not checkpoint.get("optimizer_states")
    for path in out.rglob("*"):  # steps.json included: the request keeps the names as salted hashes
        if path.is_file() and path.suffix in (".yaml", ".json", ".csv", ".md", ".tsv"):
            assert "alice" not in path.read_text(errors="ignore"), path
    # a rerun finds every step done
    again = unlearn(str(model), "photos/people", ["alice", "bob"], "photos/heldout", "unlearned", disjoint_threshold=0.99,
                    **test_only)
    assert again.metrics == result.metrics
    with pytest.raises(UnlearnInputError, match="another request's run"):
        unlearn(str(model), "photos/people", ["person02"], "photos/heldout", "unlearned", **test_only)
    # the same two models as a pair of ONNX files (audit_models, the block's last line): the run's audit numbers where
    # no training is involved (the exported graph trains differently from the converted original, so relearning may not)
    for label in ("retrieval mAP", "retrieval R@1 (nearest photo is the same person)", "verification TAR @ FAR 1e-3",
                  "old gallery (not re-enrolled): mAP", "membership inference AUC (50 = chance)"):
        assert pair[label]["before"] == pytest.approx(result.metrics[label]["before"], abs=1e-3), label
        assert pair[label]["after"] == pytest.approx(result.metrics[label]["after"], abs=2e-2), label
    assert (tmp_path / "audit/report.md").read_text().startswith("# faceunlearn audit: report")


def test_a_config_run_given_names_records_salted_hashes_only(tmp_path):
    """``--data.forget_identities [alice,bob]``: config.yaml and hyper-parameters hold salted hashes, the checkpoint
    pack ids; no run file holds a name, and the saved config.yaml trains on the same people again."""
    import torch
    import yaml

    from faceunlearn.cli import cli_main
    from faceunlearn.data import salted_names
    from faceunlearn.data.datamodule import FaceDataModule
    from faceunlearn.workflow.packs import pack_folder

    write_photo_folders(tmp_path)
    pack = pack_folder(tmp_path / "photos/people", tmp_path / "packs", "train", aligned=True, progress=False)
    cli_main(["fit", "--config", str(REPO / "configs/demo_disp.yaml"), "--model.init_args.init_weights", "null",
              "--data.root", str(pack.root), "--data.synthetic", "null", "--data.forget_identities", "[alice,bob]",
              "--data.batch_size", "8", "--data.images_per_identity", "4", "--data.eval_retain_identities", "4",
              "--data.batches_per_epoch", "1", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
              "--evaluation", str(REPO / "configs/protocols/own_evaluation_no_heldout.yaml"),
              "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "run"), "--run_files.snapshots", "[]",
              "--checkpoint.dirpath", str(tmp_path / "run/ckpt")])
    saved = yaml.safe_load((tmp_path / "run/config.yaml").read_text())["data"]
    tokens = saved["forget_identities"]
    assert all(salted_names.is_token(entry) for entry in tokens) and len(tokens) == 2
    assert salted_names.names_of(tokens, ["carol", "bob", "alice"]) == {tokens[0]: "alice", tokens[1]: "bob"}
    checkpoint = torch.load(tmp_path / "run/ckpt/last.ckpt", weights_only=True)
    assert checkpoint["datamodule_hyper_parameters"]["forget_identities"] == tokens
    assert checkpoint["FaceDataModule"]["forget_identities"] == [0, 1]  # alice, bob
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"alice" not in path.read_bytes() and b"bob" not in path.read_bytes(), path
    again = FaceDataModule(root=saved["root"], forget_identities=tokens, batch_size=8, images_per_identity=4)
    again.setup("fit")
    assert again.forget_set.identities.tolist() == [0, 1]
