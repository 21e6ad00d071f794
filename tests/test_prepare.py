"""`faceunlearn prepare`: raw layouts → packed aligned faces (geometry, splits, errors, skips, resume)."""

import json
import warnings

import numpy as np
import pytest

from faceunlearn.data import FaceDataModule, PackedDatasetError, PackedFaces, PackedFacesWriter
from faceunlearn.data.packed import TAGS, split_code, tag_code
from faceunlearn.prepare import detector as detector_module
from faceunlearn.prepare.align import ARCFACE_TEMPLATE, align_face
from faceunlearn.commands.prepare import main, run
from faceunlearn.prepare.detector import FaceLandmarker, pick_face
from faceunlearn.prepare.errors import PrepareError

from prepare_fixtures import (
    DotDetector,
    draw_face,
    face_landmarks,
    find_dots,
    make_celeba,
    make_cfp,
    make_folder,
    make_ijbb_official,
    make_ijbb_package,
    make_vggface2,
    save,
)

QUIET = ["--no-progress", "--workers", "1"]


def prepare(*argv):
    return run([*argv, *QUIET])


def assert_aligned(pack: PackedFaces, tolerance: float = 1.0) -> None:
    """Every image's five dots sit on the ArcFace template (within ``tolerance`` px)."""
    for row in range(len(pack)):
        dots = find_dots(pack.images[row])
        assert dots.shape == (5, 2), f"row {row}: found {len(dots)} dots"
        assert np.abs(dots - ARCFACE_TEMPLATE).max() < tolerance, f"row {row}: {dots} vs {ARCFACE_TEMPLATE}"


def skip_report(out):
    lines = (out / "skipped.tsv").read_text().splitlines()
    assert lines[0] == "image_id\tpath\treason"
    return {line.split("\t")[1]: line.split("\t")[2] for line in lines[1:]}


@pytest.fixture
def fake_detector(monkeypatch, tmp_path):
    """A `--detector` file that exists, loaded as the dot-finding fake (no real model exists here)."""
    model = tmp_path / "det_10g.onnx"
    model.write_bytes(b"stand-in")
    fake = DotDetector()
    monkeypatch.setattr(detector_module, "load_detector", lambda spec: fake)
    return str(model)


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw") / "celeba"
    make_celeba(root)
    return root


@pytest.fixture(scope="module")
def celeba_pack(celeba, tmp_path_factory):
    out = tmp_path_factory.mktemp("packs") / "celeba"
    run(["celeba", "--root", str(celeba), "--out", str(out), *QUIET])
    return PackedFaces.open(out)


# -- alignment ------------------------------------------------------------------------------------------
def test_align_face_is_norm_crop_and_lands_on_the_template():
    from insightface.utils.face_align import norm_crop

    landmarks = face_landmarks((100, 90), scale=1.7, angle_degrees=12)
    image = draw_face((200, 180), [landmarks])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skimage's deprecation of estimate() is kept out of the way
        aligned = align_face(image, landmarks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert np.array_equal(aligned, norm_crop(image, landmarks, image_size=112))
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    assert np.abs(find_dots(aligned) - ARCFACE_TEMPLATE).max() < 0.5


def test_pick_face_prefers_the_largest_central_face():
    boxes = np.array([[0, 0, 30, 30, 0.9], [40, 40, 80, 80, 0.8], [85, 85, 100, 100, 0.99]], np.float32)
    assert pick_face(boxes, (120, 120, 3)) == 1
    # a box given with the record restricts detection to its (2x enlarged) surroundings
    face, decoy = face_landmarks((60, 60), 1.0), face_landmarks((220, 150), 1.6)
    image = draw_face((300, 220), [face, decoy])
    x0, y0 = face.min(axis=0) - 10
    x1, y1 = face.max(axis=0) + 10
    found = FaceLandmarker(DotDetector()).find(image, np.array([x0, y0, x1, y1], np.float32))
    assert np.abs(found - face).max() < 0.5


# -- CelebA ----------------------------------------------------------------------------------------------
def test_celeba_pack_counts_geometry_rgb_and_skip_report(celeba_pack):
    pack = celeba_pack
    assert len(pack) == 17  # 4 partition-0 identities x 5, minus the empty, truncated and missing image
    assert pack.meta["num_classes"] == 4 and pack.meta["identity_names"] == ["100", "200", "300", "400"]
    assert set(pack.splits) == {split_code("train")} and set(pack.tags) == {tag_code("")}
    assert np.bincount(pack.identities).tolist() == [2, 5, 5, 5]
    assert pack.image_ids.tolist() == [0] + list(range(4, 20))  # ids are plan positions; skips leave gaps
    assert_aligned(pack)
    red, blue = pack.images[..., 0].mean(), pack.images[..., 2].mean()
    assert red > 2 * blue  # RGB, as drawn (a BGR swap would invert this)
    report = skip_report(pack.root)
    assert report == {
        "img_align_celeba/000002.jpg": "empty file (0 bytes)",
        "img_align_celeba/000003.jpg": report["img_align_celeba/000003.jpg"],
        "img_align_celeba/000004.jpg": "missing file",
    }
    assert "truncated" in report["img_align_celeba/000003.jpg"]
    assert pack.meta["skipped"] == 3 and pack.meta["prepare"]["landmarks"] == {"annotated": 17, "detected": 0}
    sources = (pack.root / "source_paths.txt").read_text().splitlines()
    assert len(sources) == 17 and sources[0] == "img_align_celeba/000001.jpg"


def test_celeba_partitions_option_and_summary(celeba, tmp_path, capsys):
    summary = prepare("celeba", "--root", str(celeba), "--out", str(tmp_path / "all"), "--partitions", "train,val,test")
    pack = PackedFaces.open(tmp_path / "all")
    assert len(pack) == 27 and pack.meta["num_classes"] == 6
    assert summary.num_written == 27 and len(summary.skipped) == 3
    printed = capsys.readouterr().out
    assert "27 images, 6 identities" in printed and "skipped 3 of 30 images" in printed and "images/s" in printed


def test_existing_output_is_never_overwritten(celeba, celeba_pack):
    before = (celeba_pack.root / "images.npy").stat().st_mtime_ns
    with pytest.raises(PrepareError, match="already exists; refusing to overwrite"):
        prepare("celeba", "--root", str(celeba), "--out", str(celeba_pack.root))
    assert (celeba_pack.root / "images.npy").stat().st_mtime_ns == before


def test_celeba_missing_annotation_file_names_it_and_the_layout(celeba, tmp_path):
    broken = tmp_path / "celeba"
    (broken / "img_align_celeba").mkdir(parents=True)
    for name in ("identity_CelebA.txt", "list_landmarks_align_celeba.txt"):
        (broken / name).write_text((celeba / name).read_text())
    with pytest.raises(PrepareError, match=r"list_eval_partition.txt not found[\s\S]*Expected layout:[\s\S]*identity_CelebA.txt"):
        prepare("celeba", "--root", str(broken), "--out", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "file, line, replacement, message",
    [
        ("list_landmarks_align_celeba.txt", 5, "000003.jpg 69 109 106 113 77 142 73 152 108", r"list_landmarks_align_celeba.txt:5: expected 11 fields"),
        ("list_landmarks_align_celeba.txt", 4, "000002.jpg 69 109 106 x 77 142 73 152 108 154", r"list_landmarks_align_celeba.txt:4: landmark coordinates: 'x' is not a number"),
        ("list_landmarks_align_celeba.txt", 2, "lefteye_x lefteye_y", r"list_landmarks_align_celeba.txt:2: line 2 must be the header"),
        ("identity_CelebA.txt", 7, "000007.jpg", r"identity_CelebA.txt:7: expected 2 fields"),
        ("list_eval_partition.txt", 3, "000003.jpg 7", r"list_eval_partition.txt:3: partition '7' is not 0, 1 or 2"),
    ],
)
def test_malformed_annotation_lines_name_file_and_line(celeba, tmp_path, file, line, replacement, message):
    broken = tmp_path / "celeba"
    broken.mkdir()
    (broken / "img_align_celeba").symlink_to(celeba / "img_align_celeba")
    for name in ("identity_CelebA.txt", "list_eval_partition.txt", "list_landmarks_align_celeba.txt"):
        lines = (celeba / name).read_text().splitlines()
        if name == file:
            lines[line - 1] = replacement
        (broken / name).write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=message):
        prepare("celeba", "--root", str(broken), "--out", str(tmp_path / "out"))


def test_celeba_landmark_count_line_must_match(celeba, tmp_path):
    broken = tmp_path / "celeba"
    broken.mkdir()
    (broken / "img_align_celeba").symlink_to(celeba / "img_align_celeba")
    for name in ("identity_CelebA.txt", "list_eval_partition.txt"):
        (broken / name).write_text((celeba / name).read_text())
    lines = (celeba / "list_landmarks_align_celeba.txt").read_text().splitlines()
    (broken / "list_landmarks_align_celeba.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(PrepareError, match="declares 30 images but the file lists 29"):
        prepare("celeba", "--root", str(broken), "--out", str(tmp_path / "out"))


# -- resume ----------------------------------------------------------------------------------------------
def _files(root):
    with np.load(root / "index.npz") as index:
        columns = {name: index[name] for name in index.files}
    return (
        (root / "images.npy").read_bytes(),
        columns,
        json.loads((root / "meta.json").read_text()),
        (root / "skipped.tsv").read_text(),
        (root / "source_paths.txt").read_text(),
    )


def test_interrupted_run_resumes_and_equals_an_uninterrupted_run_bit_for_bit(celeba, celeba_pack, tmp_path, monkeypatch):
    from faceunlearn.prepare import run as run_module

    out = tmp_path / "resumed"
    argv = ["celeba", "--root", str(celeba), "--out", str(out), "--checkpoint-every", "6", *QUIET]
    original_convert = run_module.convert
    seen = []

    def interrupted_convert(*args, **kwargs):
        def stop(done):
            seen.append(done)
            raise KeyboardInterrupt

        return original_convert(*args, **kwargs, on_checkpoint=stop)

    monkeypatch.setattr("faceunlearn.prepare.job.convert", interrupted_convert)
    with pytest.raises(KeyboardInterrupt):
        run(argv)
    assert seen and seen[0] < 20
    assert not out.exists() and (out.with_name("resumed.partial") / "images.npy").is_file()
    with pytest.raises(PackedDatasetError, match="does not exist"):
        PackedFaces.open(out)  # nothing that looks complete
    # different arguments: refuse to mix, and say which
    with pytest.raises(PrepareError, match=r"different arguments \(partitions: 'train' then, 'train,val' now\)"):
        run([*argv, "--partitions", "train,val"])
    monkeypatch.setattr("faceunlearn.prepare.job.convert", original_convert)
    summary = run(argv)
    assert summary.resumed_from == seen[0]
    resumed, straight = _files(out), _files(celeba_pack.root)
    assert resumed[0] == straight[0]
    assert all(np.array_equal(resumed[1][name], straight[1][name]) for name in straight[1])
    assert resumed[2:] == straight[2:]
    assert not out.with_name("resumed.partial").exists()
    assert sorted(path.name for path in out.iterdir()) == ["duplicates.tsv", "images.npy", "index.npz", "meta.json", "skipped.tsv", "source_paths.txt"]


def test_a_killed_run_resumes_from_its_last_checkpoint(celeba, celeba_pack, tmp_path, monkeypatch):
    """A kill mid-chunk leaves rows past the last checkpoint half-done; they are simply redone."""
    from faceunlearn.prepare import run as run_module

    out = tmp_path / "killed"
    argv = ["celeba", "--root", str(celeba), "--out", str(out), "--checkpoint-every", "8", *QUIET]
    original_convert, original_write = run_module.convert, PackedFacesWriter.write
    calls = []

    def dying_write(self, start, images):
        calls.append(start)
        if len(calls) == 5:  # batches of 3 records: checkpoint after 9 records, die during the 2nd chunk
            images = images.copy()
            images[:] = 255  # a torn write, as a kill could leave it
            original_write(self, start, images)
            raise SystemError("killed")
        original_write(self, start, images)

    monkeypatch.setattr(PackedFacesWriter, "write", dying_write)
    monkeypatch.setattr("faceunlearn.prepare.job.convert", lambda *a, **k: original_convert(*a, **k, batch_size=3))
    with pytest.raises(SystemError, match="killed"):
        run(argv)
    progress = json.loads((out.with_name("killed.partial") / "prepare_progress.json").read_text())
    assert progress["done"] == 9 and not out.exists()
    monkeypatch.undo()
    assert run(argv).resumed_from == 9
    resumed, straight = _files(out), _files(celeba_pack.root)
    assert resumed[0] == straight[0] and resumed[2:] == straight[2:]


def test_resume_refuses_a_changed_dataset(tmp_path, monkeypatch):
    from faceunlearn.prepare import run as run_module

    info = make_folder(tmp_path / "faces")
    argv = ["folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--landmarks", str(info["csv"]), "--checkpoint-every", "2"]
    original_convert = run_module.convert

    def stop(done):
        raise KeyboardInterrupt

    monkeypatch.setattr("faceunlearn.prepare.job.convert", lambda *a, **k: original_convert(*a, **k, on_checkpoint=stop))
    with pytest.raises(KeyboardInterrupt):
        prepare(*argv)
    monkeypatch.undo()
    lines = info["csv"].read_text().splitlines()
    lines[-1] = lines[-1].replace(",", ",1", 1)  # bob/gone.jpg's landmarks changed
    info["csv"].write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=r"cannot resume .*the raw dataset's file list or annotations changed since it started \(6 images then, 6 now, or different content\)"):
        prepare(*argv)


def test_restart_discards_a_partial_and_foreign_partials_are_refused(celeba, tmp_path):
    out = tmp_path / "pack"
    out.with_name("pack.partial").mkdir()
    with pytest.raises(PrepareError, match="holds no resumable `faceunlearn prepare` run; delete it or pass --restart"):
        prepare("celeba", "--root", str(celeba), "--out", str(out))
    prepare("celeba", "--root", str(celeba), "--out", str(out), "--restart")
    assert len(PackedFaces.open(out)) == 17


def test_worker_pool_gives_the_same_pack(celeba, celeba_pack, tmp_path):
    out = tmp_path / "pooled"
    run(["celeba", "--root", str(celeba), "--out", str(out), "--workers", "2", "--no-progress", "--checkpoint-every", "7"])
    pooled, straight = _files(out), _files(celeba_pack.root)
    assert pooled[0] == straight[0] and pooled[2:] == straight[2:]


def test_writer_resume_and_truncate(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 112, 112, 3), dtype=np.uint8)
    writer = PackedFacesWriter(tmp_path / "x", 9)
    writer.write(0, images[:3])
    writer.flush()
    del writer
    writer = PackedFacesWriter(tmp_path / "x", 9, resume=True)
    writer.mark_written(0, 3)
    writer.write(3, images[3:])
    writer.truncate(6)
    pack = writer.commit(np.arange(6), np.zeros(6), np.zeros(6), np.zeros(6), {"num_classes": 1})
    assert np.array_equal(pack.images, images)
    assert (pack.root / "images.npy").stat().st_size % 64 == (128 + 6 * 112 * 112 * 3) % 64


# -- VGGFace2 --------------------------------------------------------------------------------------------
def test_vggface2_splits_identities_and_detector_for_unannotated_images(tmp_path, fake_detector):
    root = tmp_path / "vggface2"
    make_vggface2(root)
    with pytest.raises(PrepareError, match=r"vggface2: 1 of 21 images have no 5-point landmarks .*test/n000001/extra_01.jpg[\s\S]*--detector"):
        prepare("vggface2", "--root", str(root), "--out", str(tmp_path / "no"))
    prepare("vggface2", "--root", str(root), "--out", str(tmp_path / "out"), "--detector", fake_detector)
    pack = PackedFaces.open(tmp_path / "out")
    names = pack.meta["identity_names"]
    assert names == ["n000002", "n000003", "n000010", "n000001", "n000009"] and pack.meta["num_classes"] == 3
    train, holdout = pack.select(split="train"), pack.select(split="holdout")
    assert len(train) == 11 and len(holdout) == 9  # 12 - the missing file; 8 + the unannotated image
    assert set(pack.identities[train]) == {0, 1, 2} and set(pack.identities[holdout]) == {3, 4}
    assert skip_report(pack.root) == {"train/n000002/0004_01.jpg": "missing file"}
    assert pack.meta["prepare"]["landmarks"] == {"annotated": 19, "detected": 1}
    assert_aligned(pack)
    only_train = tmp_path / "train_only"
    prepare("vggface2", "--root", str(root), "--out", str(only_train), "--parts", "train")
    assert len(PackedFaces.open(only_train)) == 11  # no detector needed without test/


def test_vggface2_malformed_csv_row(tmp_path):
    root = tmp_path / "vggface2"
    make_vggface2(root)
    path = root / "bb_landmark" / "loose_landmark_test.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",oops"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=r"loose_landmark_test.csv:4: landmark coordinates: 'oops' is not a number"):
        prepare("vggface2", "--root", str(root), "--out", str(tmp_path / "out"))
    (root / "bb_landmark" / "loose_landmark_train.csv").unlink()
    with pytest.raises(PrepareError, match=r"loose_landmark_train.csv not found[\s\S]*Expected layout"):
        prepare("vggface2", "--root", str(root), "--out", str(tmp_path / "out"))


# -- CFP -----------------------------------------------------------------------------------------------------
def test_cfp_needs_a_detector_and_keeps_frontal_profile(tmp_path, fake_detector, capsys):
    root = tmp_path / "cfp"
    make_cfp(root)
    with pytest.raises(PrepareError, match=r"cfp: 15 of 15 images have no 5-point landmarks \(CFP has no 5-point landmarks\)[\s\S]*Pass --detector"):
        prepare("cfp", "--root", str(root), "--out", str(tmp_path / "no"))
    prepare("cfp", "--root", str(root), "--out", str(tmp_path / "out"), "--detector", fake_detector)
    pack = PackedFaces.open(tmp_path / "out")
    assert pack.meta["num_classes"] == 0 and pack.meta["identity_names"] == ["001", "002", "003"]
    assert set(pack.splits) == {split_code("holdout")}
    assert len(pack.select(tag="frontal")) == 9 and len(pack.select(tag="profile")) == 5
    assert skip_report(pack.root) == {"Data/Images/002/profile/02.jpg": "no face detected"}
    assert_aligned(pack)


def test_detector_path_errors(tmp_path):
    root = tmp_path / "cfp"
    make_cfp(root, identities=1, frontal=1, profile=1)
    with pytest.raises(PrepareError, match=r"--detector .*nowhere.onnx: no such file"):
        prepare("cfp", "--root", str(root), "--out", str(tmp_path / "a"), "--detector", str(tmp_path / "nowhere.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(PrepareError, match=r"--detector .*garbage.onnx: cannot load it as an ONNX model"):
        prepare("cfp", "--root", str(root), "--out", str(tmp_path / "b"), "--detector", str(garbage))


def test_main_prints_one_error_line_and_exits_2(tmp_path, capsys):
    root = tmp_path / "cfp"
    make_cfp(root, identities=1, frontal=1, profile=1)
    with pytest.raises(SystemExit) as exit_info:
        main(["cfp", "--root", str(root), "--out", str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("faceunlearn prepare: error: cfp: 2 of 2 images") and "--detector" in error and "Traceback" not in error


# -- IJB-B ---------------------------------------------------------------------------------------------------
def test_ijbb_insightface_package_subjects_tags_and_duplicates(tmp_path):
    info = make_ijbb_package(tmp_path / "IJB_release")
    prepare("ijbb", "--root", str(tmp_path / "IJB_release"), "--out", str(tmp_path / "out"))
    pack = PackedFaces.open(tmp_path / "out")
    sources = (pack.root / "source_paths.txt").read_text().split()
    assert sorted(sources) == ["loose_crop/1.jpg", "loose_crop/2.jpg", "loose_crop/3.jpg", "loose_crop/5.jpg", "loose_crop/6.jpg"]
    assert set(pack.splits) == {split_code("distractor")} and pack.meta["num_classes"] == 0
    names = pack.meta["identity_names"]
    identity_of = {source: names[identity] for source, identity in zip(sources, pack.identities)}
    tag_of = {source: TAGS[tag] for source, tag in zip(sources, pack.tags)}
    assert identity_of == {"loose_crop/1.jpg": "11", "loose_crop/2.jpg": "11", "loose_crop/3.jpg": "11", "loose_crop/5.jpg": "12", "loose_crop/6.jpg": "template:4"}
    assert tag_of == {"loose_crop/1.jpg": "still", "loose_crop/2.jpg": "frame", "loose_crop/3.jpg": "frame", "loose_crop/5.jpg": "still", "loose_crop/6.jpg": "still"}
    notes = pack.meta["prepare"]["notes"]
    assert notes["duplicate_rows_dropped"] == 1
    assert notes["tag_source"] == {"FILENAME folder": 4, "one face per media: still": 1}
    assert_aligned(pack)
    prepare("ijbb", "--root", str(info["root"]), "--out", str(tmp_path / "all"), "--keep-duplicates")
    assert len(PackedFaces.open(tmp_path / "all")) == 6


def test_ijbb_malformed_points_line(tmp_path):
    info = make_ijbb_package(tmp_path / "IJB_release")
    path = info["root"] / "meta" / "ijbb_name_5pts_score.txt"
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:8])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=r"ijbb_name_5pts_score.txt:2: expected 12 fields"):
        prepare("ijbb", "--root", str(info["root"]), "--out", str(tmp_path / "out"))


def test_ijbb_official_release_detects_inside_the_face_box(tmp_path, fake_detector):
    root = tmp_path / "IJB-B"
    make_ijbb_official(root)
    with pytest.raises(PrepareError, match=r"ijbb: 4 of 4 images have no 5-point landmarks \(the official IJB-B release gives face boxes"):
        prepare("ijbb", "--root", str(root), "--out", str(tmp_path / "no"))
    prepare("ijbb", "--root", str(root), "--out", str(tmp_path / "out"), "--detector", fake_detector)
    pack = PackedFaces.open(tmp_path / "out")
    assert len(pack) == 4  # img/10.jpg listed twice for subject 21: kept once
    assert pack.meta["identity_names"] == ["21", "22"]
    assert len(pack.select(tag="still")) == 2 and len(pack.select(tag="frame")) == 2
    assert_aligned(pack)  # the face in the box, not the larger decoy


def test_ijbb_without_any_layout_shows_both(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match=r"insightface IJB package[\s\S]*official IJB-B release"):
        prepare("ijbb", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))


# -- folder ---------------------------------------------------------------------------------------------------
def test_folder_with_landmarks_csv_tags_and_split(tmp_path):
    info = make_folder(tmp_path / "faces")
    prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--landmarks", str(info["csv"]), "--split", "holdout")
    pack = PackedFaces.open(tmp_path / "out")
    assert pack.meta["identity_names"] == ["alice", "bob"] and set(pack.splits) == {split_code("holdout")}
    sources = (pack.root / "source_paths.txt").read_text().split()
    assert dict(zip(sources, (TAGS[t] for t in pack.tags))) == {
        "alice/a3.png": "", "alice/frontal/a1.jpg": "frontal", "alice/profile/a2.jpg": "profile", "bob/b1.jpg": "", "bob/b2.jpg": "",
    }
    assert skip_report(pack.root) == {"bob/gone.jpg": "missing file"}
    assert_aligned(pack)


def test_folder_without_landmarks_needs_detector_or_aligned(tmp_path):
    info = make_folder(tmp_path / "faces")
    with pytest.raises(PrepareError, match=r"folder: 5 of 5 images have no 5-point landmarks \(no --landmarks CSV was given \(or pass --aligned"):
        prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"))
    lines = info["csv"].read_text().splitlines()
    lines[2] = "alice/profile/a2.jpg,1,2,3"
    info["csv"].write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=r"landmarks.csv:3: expected 11 fields"):
        prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--landmarks", str(info["csv"]))


def test_folder_aligned_copies_112_crops_exactly(tmp_path):
    rng = np.random.default_rng(1)
    crops = {f"carol/{k}.png": rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for k in range(3)}
    for relative, crop in crops.items():
        save(tmp_path / "aligned" / relative, crop)
    save(tmp_path / "aligned" / "dave" / "big.png", rng.integers(0, 256, (120, 100, 3), dtype=np.uint8))
    prepare("folder", "--root", str(tmp_path / "aligned"), "--out", str(tmp_path / "out"), "--aligned", "--split", "distractor")
    pack = PackedFaces.open(tmp_path / "out")
    assert len(pack) == 3 and all(np.array_equal(pack.images[k], crops[f"carol/{k}.png"]) for k in range(3))
    assert "not an aligned 112x112 face (100x120)" in skip_report(pack.root)["dave/big.png"]


def test_prepare_lists_the_exact_duplicate_photos_it_packs(tmp_path, capsys):
    rng = np.random.default_rng(2)
    crops = {f"erin/{k}.png": rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for k in range(4)}
    crops["erin/3.png"] = crops["erin/0.png"]  # a repeated photo of one person
    crops["fred/0.png"] = crops["erin/1.png"]  # and one filed under another person
    crops["fred/1.png"] = crops["erin/2.png"].copy()
    crops["fred/1.png"][0, 0, 0] ^= 1  # one bit away: not a duplicate
    for relative, crop in crops.items():
        save(tmp_path / "aligned" / relative, crop)
    summary = run(["folder", "--root", str(tmp_path / "aligned"), "--out", str(tmp_path / "out"), "--aligned"])
    assert "exact duplicates: 2 groups of identical photos (4 images" in capsys.readouterr().out
    pack = PackedFaces.open(tmp_path / "out")
    paths = (tmp_path / "out" / "source_paths.txt").read_text().split()
    rows = [line.split("\t") for line in (tmp_path / "out" / "duplicates.tsv").read_text().splitlines()[1:]]
    groups = {}
    for group, image_id, identity, path in rows:
        groups.setdefault(group, set()).add("/".join(path.replace("\\", "/").split("/")[-2:]))
        assert paths[int(image_id)] == path  # the pack's image id is its source path's line
    assert sorted(map(sorted, groups.values())) == [["erin/0.png", "erin/3.png"], ["erin/1.png", "fred/0.png"]]
    assert summary.duplicate_groups == [2, 2] and pack.meta["exact_duplicates"]["images"] == 4 and len(paths) == 6


# -- prepared packs feed the DataModule ------------------------------------------------------------------
def test_prepared_packs_feed_the_datamodule(celeba_pack, tmp_path, fake_detector):
    """CelebA as the main pack, CFP and IJB-B as extra evaluation sources, as configs/disp_celeba.yaml."""
    make_cfp(tmp_path / "cfp")
    prepare("cfp", "--root", str(tmp_path / "cfp"), "--out", str(tmp_path / "cfp_pack"), "--detector", fake_detector)
    make_ijbb_package(tmp_path / "IJB_release")
    prepare("ijbb", "--root", str(tmp_path / "IJB_release"), "--out", str(tmp_path / "ijbb_pack"))
    dm = FaceDataModule(root=str(celeba_pack.root), extra_sources={"cfp": str(tmp_path / "cfp_pack"), "ijbb": str(tmp_path / "ijbb_pack")},
                        num_forget_identities=2, batch_size=4, images_per_identity=2, eval_retain_identities=2)
    dm.setup()
    assert dm.num_classes == 4
    assert len(dm.subsets["cfp:holdout_frontal"]) == 9 and len(dm.subsets["cfp:holdout_profile"]) == 5
    assert len(dm.subsets["ijbb:distractors"]) == 5 and len(dm.subsets["forget"]) >= 8
    batch = next(iter(dm.eval_dataloader(["cfp:holdout_profile", "ijbb:distractors"])))
    assert batch["image"].shape == (10, 112, 112, 3) and str(batch["image"].dtype) == "torch.uint8"  # normalised on the device


def test_the_celeba_protocol_config_runs_on_prepared_packs(celeba_pack, tmp_path, fake_detector, monkeypatch):
    """configs/disp_celeba.yaml end to end on tiny prepared packs: only the model size and run length
    are overridden; paths come from $FACEUNLEARN_DATA, benchmarks and sources from the config."""
    from pathlib import Path

    from faceunlearn.callbacks import RetrievalEvaluation
    from faceunlearn.cli import cli_main

    data = tmp_path / "data"
    data.mkdir()
    (data / "celeba").symlink_to(celeba_pack.root)
    make_cfp(tmp_path / "cfp")
    prepare("cfp", "--root", str(tmp_path / "cfp"), "--out", str(data / "cfp"), "--detector", fake_detector)
    make_ijbb_package(tmp_path / "ijbb")
    prepare("ijbb", "--root", str(tmp_path / "ijbb"), "--out", str(data / "ijbb"))
    make_vggface2(tmp_path / "vggface2")
    prepare("vggface2", "--root", str(tmp_path / "vggface2"), "--out", str(data / "vggface2"), "--detector", fake_detector)
    monkeypatch.setenv("FACEUNLEARN_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs/disp_celeba.yaml"
    cli = cli_main(["fit", "--config", str(config), "--model.init_args.backbone", "iresnet_tiny", "--model.init_args.embedding_size", "64",
                    "--model.init_args.init_weights", "null", "--data.num_forget_identities", "2", "--data.batch_size", "4",
                    "--data.images_per_identity", "2", "--data.batches_per_epoch", "2", "--data.eval_retain_identities", "2",
                    "--data.num_workers", "0", "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false",
                    "--checkpoint.dirpath", str(tmp_path / "ckpt")])
    (step, metrics), *_ = RetrievalEvaluation.of(cli.trainer).history[-1:]
    assert step == 4 and (tmp_path / "ckpt/last.ckpt").is_file()
    for name in ("forget/mAP", "forget_extended/mAP", "cfp/mAP", "cfp_extended/R@1", "vggface2/mAP", "retain/CS", "forget/CS"):
        assert np.isfinite(metrics[name]), name
