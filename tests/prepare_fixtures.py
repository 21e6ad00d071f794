"""Tiny raw datasets in the official layouts, for tests/test_prepare.py.

Every "face" is five white dots on a dark, reddish, noisy background, drawn at known landmark
positions: a similarity transform (scale, rotation, shift) of the ArcFace template. After
alignment the dots must sit on the template (``find_dots``), and a fake detector
(``DotDetector``) finds faces by finding the dots. Annotation files use the real formats;
helpers add the corruptions the tests need (empty, truncated and missing images).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceunlearn.prepare.align import ARCFACE_TEMPLATE

BACKGROUND_RGB = (90, 30, 20)  # red-dominant: a BGR/RGB swap would show


def face_landmarks(centre, scale: float = 1.5, angle_degrees: float = 0.0) -> np.ndarray:
    """The ArcFace template scaled, rotated about its centroid and moved to ``centre`` ([5, 2] float32)."""
    theta = np.deg2rad(angle_degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    template = ARCFACE_TEMPLATE - ARCFACE_TEMPLATE.mean(axis=0)
    return (template @ rotation.T * scale + np.asarray(centre, dtype=np.float64)).astype(np.float32)


def draw_face(size_wh, faces, seed: int = 0, radius: float = 3.0) -> np.ndarray:
    """An RGB image of ``size_wh`` with five white dots per landmark set in ``faces``."""
    width, height = size_wh
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND_RGB
    image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
    for landmarks in faces:
        for x, y in np.asarray(landmarks, dtype=np.float64):
            cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), int(round(radius * 16)), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return image


def save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else Image.fromarray(rgb).save(path)


def find_dots(image: np.ndarray, threshold: int = 160) -> np.ndarray:
    """Intensity-weighted centroids of the bright blobs of an RGB image, in ArcFace order ([k, 2])."""
    gray = image.min(axis=2).astype(np.float64)  # white dots are bright in every channel
    count, labels = cv2.connectedComponents((gray > threshold).astype(np.uint8))
    ys, xs = np.indices(gray.shape)
    centres = []
    for label in range(1, count):
        weight = np.where(labels == label, gray, 0.0)
        if weight.sum() > 0:
            centres.append(((xs * weight).sum() / weight.sum(), (ys * weight).sum() / weight.sum()))
    centres = np.array(centres, dtype=np.float32).reshape(-1, 2)
    if len(centres) != 5:
        return centres
    by_y = centres[np.argsort(centres[:, 1])]
    eyes, nose, mouth = by_y[:2], by_y[2:3], by_y[3:]
    return np.concatenate([eyes[np.argsort(eyes[:, 0])], nose, mouth[np.argsort(mouth[:, 0])]])


class DotDetector:
    """Stands in for an insightface detector: ``detect(bgr)`` → (boxes [n, 5], landmarks [n, 5, 2])."""

    def __init__(self):
        self.calls = 0

    def detect(self, bgr):
        self.calls += 1
        points = find_dots(np.ascontiguousarray(bgr[..., ::-1]))
        if len(points) != 5:
            return np.empty((0, 5), np.float32), np.empty((0, 5, 2), np.float32)
        (x0, y0), (x1, y1) = points.min(axis=0) - 10, points.max(axis=0) + 10
        return np.array([[x0, y0, x1, y1, 0.99]], np.float32), points[None]


# -- corruptions -------------------------------------------------------------------------------------
def make_empty(path: Path) -> None:
    path.write_bytes(b"")


def make_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# -- CelebA --------------------------------------------------------------------------------------------
CELEBA_HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


def make_celeba(root: Path, identities: int = 6, per_identity: int = 5) -> dict:
    """CelebA layout: identities 1..identities-2 in partition 0, then one in 1 and one in 2.

    Corrupt: image 2 is empty, image 3 truncated, image 4 listed but missing (all partition 0).
    """
    root.mkdir(parents=True, exist_ok=True)
    identity_lines, partition_lines, landmark_lines, truth = [], [], [], {}
    number = 0
    for identity in range(1, identities + 1):
        partition = 0 if identity <= identities - 2 else identity - (identities - 2)
        for k in range(per_identity):
            number += 1
            name = f"{number:06d}.jpg"
            landmarks = face_landmarks((89 + k, 120 - k), scale=1.4 + 0.05 * k, angle_degrees=(-8 + 4 * k))
            save(root / "img_align_celeba" / name, draw_face((178, 218), [landmarks], seed=number))
            identity_lines.append(f"{name} {identity * 100}")
            partition_lines.append(f"{name} {partition}")
            landmark_lines.append(name + " " + " ".join(f"{v:.0f}" if v.is_integer() else f"{v:.3f}" for v in landmarks.ravel().astype(float)))
            truth[name] = landmarks
    (root / "identity_CelebA.txt").write_text("\n".join(identity_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    (root / "list_landmarks_align_celeba.txt").write_text(f"{number}\n{CELEBA_HEADER}\n" + "\n".join(landmark_lines) + "\n")
    make_empty(root / "img_align_celeba" / "000002.jpg")
    make_truncated(root / "img_align_celeba" / "000003.jpg")
    (root / "img_align_celeba" / "000004.jpg").unlink()
    return {"landmarks": truth, "num_images": number}


# -- VGGFace2 -------------------------------------------------------------------------------------------
def make_vggface2(root: Path, train_ids=("n000002", "n000003", "n000010"), test_ids=("n000001", "n000009"), per_identity: int = 4) -> None:
    """VGGFace2 layout; n000002/0004_01 is in the CSV but not on disk, test/n000001/extra_01.jpg has no CSV row."""
    for part, ids in (("train", train_ids), ("test", test_ids)):
        lines = ["NAME_ID," + ",".join(f"P{i}{axis}" for i in range(1, 6) for axis in "XY")]
        for j, identity in enumerate(ids):
            for k in range(per_identity):
                key = f"{identity}/{k + 1:04d}_01"
                landmarks = face_landmarks((100 + 3 * k, 110 + j), scale=1.8, angle_degrees=5 * k - 5)
                save(root / part / f"{key}.jpg", draw_face((200, 230), [landmarks], seed=k + 10 * j))
                lines.append(f'"{key}",' + ",".join(f"{v:.2f}" for v in landmarks.ravel()))  # NAME_ID is quoted
        (root / "bb_landmark").mkdir(parents=True, exist_ok=True)
        (root / "bb_landmark" / f"loose_landmark_{part}.csv").write_text("\n".join(lines) + "\n")
    (root / "train" / "n000002" / "0004_01.jpg").unlink()
    extra = face_landmarks((100, 115), scale=1.8)
    save(root / "test" / "n000001" / "extra_01.jpg", draw_face((200, 230), [extra], seed=99))


# -- CFP ----------------------------------------------------------------------------------------------------
def make_cfp(root: Path, identities: int = 3, frontal: int = 3, profile: int = 2) -> None:
    """CFP layout (no landmarks); 002/profile/02.jpg shows no face."""
    for identity in range(1, identities + 1):
        for tag, count in (("frontal", frontal), ("profile", profile)):
            for k in range(1, count + 1):
                landmarks = face_landmarks((120 + k, 130), scale=2.0, angle_degrees=3 * k)
                faces = [] if (identity, tag, k) == (2, "profile", 2) else [landmarks]
                save(root / "Data" / "Images" / f"{identity:03d}" / tag / f"{k:02d}.jpg", draw_face((240, 260), faces, seed=identity * 10 + k))


# -- IJB-B ------------------------------------------------------------------------------------------------------
def make_ijbb_package(root: Path) -> dict:
    """insightface IJB package layout (root = IJB_release); see the comments for what each row tests.

    Templates 1, 2 → subject 11; template 3 → subject 12; template 4 is in no CSV.
    Faces: 1.jpg still (t1, media 100); 2.jpg + 3.jpg frames of video media 200 (t1); 4.jpg the
    same crop as 1.jpg again for template 2 (duplicate, dropped); 5.jpg still (t3, media 300, the
    CSV says img/); 6.jpg (t4, media 400: no CSV row, single face → still by the heuristic).
    """
    base = root / "IJBB"
    names, lines, media_lines = [], [], []
    faces = [  # (file, template, media, seed)
        ("1.jpg", 1, 100, 1), ("2.jpg", 1, 200, 2), ("3.jpg", 1, 200, 3), ("4.jpg", 2, 100, 1), ("5.jpg", 3, 300, 5), ("6.jpg", 4, 400, 6),
    ]
    for file, template, media, seed in faces:
        landmarks = face_landmarks((60 + seed, 62), scale=1.2, angle_degrees=seed)
        save(base / "loose_crop" / file, draw_face((124, 130), [landmarks], seed=seed))
        lines.append(file + " " + " ".join(f"{v:.3f}" for v in landmarks.ravel()) + " 0.998")
        media_lines.append(f"{file} {template} {media}")
    (base / "meta").mkdir(parents=True)
    (base / "meta" / "ijbb_name_5pts_score.txt").write_text("\n".join(lines) + "\n")
    (base / "meta" / "ijbb_face_tid_mid.txt").write_text("\n".join(media_lines) + "\n")
    header = "TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT"
    (base / "meta" / "ijbb_1N_gallery_S1.csv").write_text(
        f"{header}\n1,11,img/100.jpg,100,1,1,50,50\n1,11,frame/7.png,200,1,1,50,50\n1,11,frame/8.png,200,1,1,50,50\n2,11,img/100.jpg,100,1,1,50,50\n"
    )
    (base / "meta" / "ijbb_1N_probe_mixed.csv").write_text(f"{header}\n3,12,img/300.jpg,300,1,1,50,50\n")
    return {"root": base}


def make_ijbb_official(root: Path) -> dict:
    """Official IJB-B layout: full images with a face in the CSV box and a decoy face elsewhere."""
    rows = ["TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT,RIGHT_EYE_X,RIGHT_EYE_Y"]
    truth = {}
    for k, (filename, subject) in enumerate([("img/10.jpg", 21), ("img/11.jpg", 21), ("frame/30.png", 22), ("frame/31.png", 22)]):
        face = face_landmarks((90 + 10 * k, 100), scale=1.0 + 0.1 * k, angle_degrees=4 * k)
        decoy = face_landmarks((300, 260), scale=1.5)
        save(root / filename, draw_face((400, 320), [face, decoy], seed=k))
        x0, y0 = face.min(axis=0) - 15
        x1, y1 = face.max(axis=0) + 15
        rows.append(f"{k + 1},{subject},{filename},{k},{x0:.1f},{y0:.1f},{x1 - x0:.1f},{y1 - y0:.1f},,")
        truth[filename] = face
    rows.append(f"9,21,img/10.jpg,0,{rows[1].split(',')[4]},{rows[1].split(',')[5]},{rows[1].split(',')[6]},{rows[1].split(',')[7]},,")  # same face, another template
    (root / "protocol").mkdir(parents=True)
    (root / "protocol" / "ijbb_1N_gallery_S1.csv").write_text("\n".join(rows) + "\n")
    return {"landmarks": truth}


# -- folder -----------------------------------------------------------------------------------------------------
def make_folder(root: Path) -> dict:
    """``root/<identity>/[tag/]image`` with a landmarks CSV (one row for a missing file)."""
    truth = {}
    layout = ["alice/frontal/a1.jpg", "alice/profile/a2.jpg", "alice/a3.png", "bob/b1.jpg", "bob/b2.jpg"]
    for k, relative in enumerate(layout):
        landmarks = face_landmarks((80, 90 + k), scale=1.3, angle_degrees=-3 * k)
        save(root / relative, draw_face((170, 190), [landmarks], seed=k))
        truth[relative] = landmarks
    truth["bob/gone.jpg"] = face_landmarks((80, 90))
    with open(root.parent / "landmarks.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4", "x5", "y5"])
        for relative, landmarks in truth.items():
            writer.writerow([relative] + [f"{v:.3f}" for v in landmarks.ravel()])
    return {"landmarks": truth, "csv": root.parent / "landmarks.csv"}
