"""``faceunlearn check-disjoint``: a forget identity that reappears elsewhere is found (SPEC §5).

Faces here are per-identity blocky patterns plus per-image noise; the reference model is a random
iresnet_tiny whose BatchNorm statistics are re-estimated on them. Under it, centroids of different
identities have cosine < 0.4 while two disjoint image sets of one identity reach > 0.9.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from faceunlearn.check_disjoint import forget_rows, main
from faceunlearn.data import FaceDataModule
from faceunlearn.data.packed import PackedFaces, PackedFacesWriter, split_code, tag_code
from faceunlearn.data.splits import choose_forget_identities
from faceunlearn.export import export_onnx
from test_export import save_lightning_checkpoint  # tests/ is on sys.path (pytest prepend import mode)

NUM_FORGET, SEED = 3, 0
PATTERNS = np.random.default_rng(0).integers(0, 256, (64, 14, 14, 3)).repeat(8, 1).repeat(8, 2).astype(np.float32)


def photos(person: int, count: int, seed: int) -> np.ndarray:
    """``count`` noisy uint8 images of ``person``'s pattern."""
    noise = np.random.default_rng(seed).normal(0, 20, (count, 112, 112, 3))
    return np.clip(PATTERNS[person] + noise, 0, 255).astype(np.uint8)


def write_pack(root, people: list[tuple[int, int, str, str, int]], names: dict | None = None) -> PackedFaces:
    """People as ``(identity id, pattern, split, tag, image count)``; image noise seeded per row."""
    images, identities, splits, tags = [], [], [], []
    for number, (identity, pattern, split, tag, count) in enumerate(people):
        images.append(photos(pattern, count, seed=hash((str(root), number)) % 2**32))
        identities += [identity] * count
        splits += [split_code(split)] * count
        tags += [tag_code(tag)] * count
    writer = PackedFacesWriter(root, len(identities))
    writer.write(0, np.concatenate(images))
    meta = {"num_classes": sum(1 for p in people if p[2] == "train"), **({"identity_names": names} if names else {})}
    return writer.commit(np.arange(len(identities)), identities, splits, tags, meta)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Packs and a reference checkpoint.

    ``celeb``: the forget source (train 0–9, holdout 20–22, distractors 30–35), all distinct people.
    ``ijbb``: distractors, one of them (id 8) new photos of the first forget identity.
    ``cfp``: holdout, identity 1 an exact copy of the second forget identity's images.
    """
    root = tmp_path_factory.mktemp("disjoint")
    people = [(i, i, "train", "", 8) for i in range(10)]
    people += [(20 + i, 10 + i, "holdout", tag, 3) for i in range(3) for tag in ("frontal", "profile")]
    people += [(30 + i, 20 + i, "distractor", "", 4) for i in range(6)]
    celeb = write_pack(root / "celeb", people, names=[f"person_{i}" for i in range(40)])
    checkpoint = root / "reference.ckpt"
    save_lightning_checkpoint(checkpoint, seed=0, calibration_images=np.asarray(celeb.images))
    forget_ids = choose_forget_identities(celeb.identities[celeb.select("train")], NUM_FORGET, SEED)
    first, second = forget_ids[:2].tolist()
    write_pack(root / "ijbb", [(7, 40, "distractor", "", 4), (8, first, "distractor", "still", 5), (9, 41, "distractor", "", 4)],
               names={"8": "subject_8"})
    cfp = PackedFacesWriter(root / "cfp", 8 + 4)
    cfp.write(0, np.concatenate([np.asarray(celeb.images[celeb.identities == second]), photos(42, 4, seed=5)]))
    cfp.commit(np.arange(12), [1] * 8 + [2] * 4, [split_code("holdout")] * 12, [tag_code("frontal")] * 12, {"num_classes": 0})
    return {"root": root, "celeb": root / "celeb", "checkpoint": checkpoint, "forget_ids": forget_ids}


def assert_duplicates_found(world, rows, ijbb_label, cfp_label):
    first, second = world["forget_ids"][:2].tolist()
    above = {(int(r["forget_identity"]), r["other_dataset"], r["other_name"]): float(r["cosine"]) for r in rows if r["above_threshold"] == "True"}
    assert set(above) == {(first, ijbb_label, "subject_8"), (second, cfp_label, "id1")}
    assert above[(second, cfp_label, "id1")] == pytest.approx(1.0, abs=1e-5)  # the same images
    assert above[(first, ijbb_label, "subject_8")] > 0.8  # other photos of the same person


def check(world, tmp_path, *extra) -> tuple[int, list[dict]]:
    """Run the command; (exit status, CSV rows)."""
    report = tmp_path / "report.csv"
    argv = ["--forget-data", str(world["celeb"]), "--num-forget", str(NUM_FORGET), "--seed", str(SEED),
            "--model", str(world["checkpoint"]), "--report", str(report), *extra]
    try:
        main(argv)
        status = 0
    except SystemExit as exit:
        status = exit.code
    rows = list(csv.DictReader(report.open())) if report.exists() else []
    return status, rows


def test_forget_set_is_the_datamodules(world):
    module = FaceDataModule(root=str(world["celeb"]), num_forget_identities=NUM_FORGET, seed=SEED, batch_size=12, images_per_identity=4)
    module.setup()
    packed = PackedFaces.open(world["celeb"])
    assert np.array_equal(np.sort(forget_rows(packed, NUM_FORGET, SEED, None)), np.sort(module.rows["forget"]))


def test_disjoint_sets_pass(world, tmp_path, capsys):
    status, rows = check(world, tmp_path)  # against the pack's own holdout + distractor identities
    assert status == 0
    assert "OK: forget identities are disjoint" in capsys.readouterr().out
    assert len(rows) == NUM_FORGET * 5  # top-5 per forget identity
    assert {int(r["forget_identity"]) for r in rows} == set(world["forget_ids"].tolist())
    assert {r["forget_name"] for r in rows} == {f"person_{i}" for i in world["forget_ids"]}
    assert all(int(r["other_identity"]) >= 20 for r in rows)  # never another training identity, never D_f itself
    assert max(float(r["cosine"]) for r in rows) < 0.5
    assert min(float(r["forget_self_cosine"]) for r in rows) > 0.8  # D_f^train vs D_f^test: same person


def test_a_forget_identity_among_distractors_fails(world, tmp_path, capsys):
    """Other packs hold new photos of one forget identity and an exact copy of another, under other labels."""
    ijbb, cfp = world["root"] / "ijbb", world["root"] / "cfp"
    status, rows = check(world, tmp_path, "--against", str(ijbb), f"cfp={cfp}")
    assert status == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "ABOVE THRESHOLD" in out
    assert_duplicates_found(world, rows, ijbb_label=str(ijbb), cfp_label="cfp")


def test_onnx_reference_model_gives_the_same_cosines(world, tmp_path):
    _, torch_rows = check(world, tmp_path)
    onnx_path = tmp_path / "reference.onnx"
    export_onnx(world["checkpoint"], onnx_path)
    status, onnx_rows = check(world, tmp_path, "--model", str(onnx_path))
    assert status == 0
    key = lambda r: (r["forget_identity"], r["other_identity"])  # noqa: E731
    assert sorted(map(key, onnx_rows)) == sorted(map(key, torch_rows))
    torch_cosines = {key(r): float(r["cosine"]) for r in torch_rows}
    assert all(abs(float(r["cosine"]) - torch_cosines[key(r)]) < 1e-4 for r in onnx_rows)


def test_config_gives_forget_settings_and_extra_sources(world, tmp_path, monkeypatch):
    """A training config's data section (as in configs/disp_celeba.yaml, with $VAR paths)."""
    monkeypatch.setenv("FACEUNLEARN_TEST_DATA", str(world["root"]))
    config = tmp_path / "disp.yaml"
    config.write_text(json.dumps({"data": {
        "root": "$FACEUNLEARN_TEST_DATA/celeb", "dataset": "celeb", "seed": SEED, "num_forget_identities": NUM_FORGET,
        "extra_sources": {"ijbb": "$FACEUNLEARN_TEST_DATA/ijbb", "cfp": "${FACEUNLEARN_TEST_DATA}/cfp"},
    }}))
    report = tmp_path / "r.csv"
    with pytest.raises(SystemExit) as exit:
        main(["--config", str(config), "--model", str(world["checkpoint"]), "--report", str(report)])
    assert exit.value.code == 1
    rows = list(csv.DictReader(report.open()))
    assert {int(r["forget_identity"]) for r in rows} == set(world["forget_ids"].tolist())
    assert {r["forget_dataset"] for r in rows} == {"celeb"} and {r["other_dataset"] for r in rows} == {"celeb", "ijbb", "cfp"}
    assert_duplicates_found(world, rows, ijbb_label="ijbb", cfp_label="cfp")


@pytest.mark.parametrize("what", ["model", "forget", "against", "split", "too_many"])
def test_bad_inputs_exit_2_with_a_message(world, tmp_path, capsys, what):
    extra = {
        "model": ["--model", str(tmp_path / "missing.ckpt")],
        "forget": ["--forget-data", str(tmp_path / "no_pack")],
        "against": ["--against", str(tmp_path / "no_ijbb")],
        "split": ["--splits", "holdout", "validation"],
        "too_many": ["--num-forget", "50"],
    }[what]
    status, _ = check(world, tmp_path, *extra)
    message = capsys.readouterr().err
    assert status == 2
    assert {
        "model": "reference model", "forget": "no_pack' does not exist", "against": "no_ijbb' does not exist",
        "split": "unknown split(s) ['validation']", "too_many": "cannot draw 50 forget identities",
    }[what] in message
    assert not (tmp_path / "report.csv").exists()


def test_config_with_an_unset_variable_names_it(world, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FACEUNLEARN_UNSET_VARIABLE", raising=False)
    config = tmp_path / "disp.yaml"
    config.write_text(json.dumps({"data": {"root": "$FACEUNLEARN_UNSET_VARIABLE/celeb"}}))
    with pytest.raises(SystemExit) as exit:
        main(["--config", str(config), "--model", str(world["checkpoint"]), "--report", str(tmp_path / "r.csv")])
    assert exit.value.code == 2
    assert "FACEUNLEARN_UNSET_VARIABLE that are not set" in capsys.readouterr().err
