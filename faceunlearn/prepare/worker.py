"""The per-image work, run in pool processes: decode → landmarks (annotated or detected) → align.

A task is a batch of records (absolute paths, landmarks, boxes); the answer is the aligned crops
of the usable ones and, per record, ``None`` or the reason it was skipped. Each process loads its
own detector once (``init_worker``).
"""

from __future__ import annotations

import signal

import cv2
import numpy as np

from faceunlearn.prepare import detector as detector_module
from faceunlearn.prepare.align import IMAGE_SIZE, DegenerateLandmarks, align_face
from faceunlearn.prepare.detector import DetectorSpec, FaceLandmarker
from faceunlearn.prepare.images import UnusableImage, read_rgb

_state: dict = {"landmarker": None, "aligned": False}


def init_worker(spec: DetectorSpec | None, aligned: bool, pool_process: bool = True) -> None:
    """Per-process set-up. A pool process runs OpenCV single-threaded (the pool is the parallelism)
    and ignores Ctrl-C, which the main process handles by stopping the pool."""
    if pool_process:
        cv2.setNumThreads(1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _state["aligned"] = aligned
    _state["landmarker"] = FaceLandmarker(detector_module.load_detector(spec)) if spec is not None else None


def process_batch(task: tuple[list[str], np.ndarray, np.ndarray]) -> tuple[np.ndarray, list[str | None]]:
    """Aligned crops ``[k, 112, 112, 3]`` of the usable records and a skip reason (or None) per record."""
    paths, landmarks, boxes = task
    crops, reasons = [], []
    for path, points, box in zip(paths, landmarks, boxes):
        try:
            crops.append(_process_one(path, points, box))
            reasons.append(None)
        except (UnusableImage, DegenerateLandmarks) as error:
            reasons.append(str(error))
    images = np.stack(crops) if crops else np.empty((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return images, reasons


def _process_one(path: str, points: np.ndarray, box: np.ndarray) -> np.ndarray:
    rgb = read_rgb(path)
    if _state["aligned"]:
        if rgb.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            raise UnusableImage(f"not an aligned {IMAGE_SIZE}x{IMAGE_SIZE} face ({rgb.shape[1]}x{rgb.shape[0]}); drop --aligned to align it")
        return np.ascontiguousarray(rgb)
    if np.isnan(points).any():
        if _state["landmarker"] is None:
            raise UnusableImage("no landmarks and no detector")
        try:
            points = _state["landmarker"].find(rgb, box)
        except Exception as error:  # one odd image must not stop a conversion of millions
            raise UnusableImage(f"detector failed ({type(error).__name__}: {error})") from None
        if points is None:
            raise UnusableImage("no face detected")
    return align_face(rgb, points)
