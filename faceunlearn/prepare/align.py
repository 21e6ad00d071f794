"""5-point alignment to the 112×112 ArcFace crop: insightface's ``norm_crop``, with a degeneracy check.

``align_face`` is ``insightface.utils.face_align.norm_crop(image, landmarks, image_size=112)``
step by step: ``estimate_norm`` fits the least-squares similarity transform (Umeyama) taking the
five points onto ``arcface_dst`` and ``cv2.warpAffine`` resamples with it (bilinear, black
border). Splitting the two steps lets a degenerate fit (all points equal, non-finite values)
be reported as a skipped image instead of a garbage crop. Channel order passes through: RGB in,
RGB out.

insightface's ``face_align.py`` is loaded from the installed insightface package by file, without
running ``insightface/__init__.py``: that imports ``insightface.app`` → albumentations → torch,
which would cost every worker process seconds of start-up and hundreds of MB for two functions
that need only OpenCV, NumPy and scikit-image. If insightface was imported already, its module
is used as is.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np


def _insightface_face_align():
    """``insightface.utils.face_align`` (see the module docstring for why it is loaded by file)."""
    if "insightface.utils.face_align" in sys.modules:
        return sys.modules["insightface.utils.face_align"]
    package = importlib.util.find_spec("insightface")
    path = Path(package.submodule_search_locations[0]) / "utils" / "face_align.py"
    spec = importlib.util.spec_from_file_location("faceunlearn.prepare._insightface_face_align", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_face_align = _insightface_face_align()
estimate_norm = _face_align.estimate_norm
IMAGE_SIZE = 112
#: where the five landmarks land in the 112×112 crop (left eye, right eye, nose, mouth corners)
ARCFACE_TEMPLATE = np.asarray(_face_align.arcface_dst, dtype=np.float32)


class DegenerateLandmarks(ValueError):
    """The five points do not define a similarity transform."""


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The 2×3 similarity transform taking ``landmarks`` [5, 2] onto the ArcFace template."""
    landmarks = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    if not np.isfinite(landmarks).all() or np.ptp(landmarks, axis=0).max() < 1e-3:
        raise DegenerateLandmarks(f"degenerate landmarks {landmarks.round(1).tolist()}")
    with warnings.catch_warnings():  # skimage >= 0.26 deprecates the estimate() insightface calls
        warnings.simplefilter("ignore", FutureWarning)
        matrix = estimate_norm(landmarks, IMAGE_SIZE)
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-8:
        raise DegenerateLandmarks(f"degenerate landmarks {landmarks.round(1).tolist()}")
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The aligned ``[112, 112, 3]`` uint8 crop (same as insightface ``norm_crop``)."""
    return cv2.warpAffine(image, alignment_matrix(landmarks), (IMAGE_SIZE, IMAGE_SIZE), borderValue=0.0)
