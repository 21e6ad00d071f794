"""3-D head geometry: rotations, ellipsoid quadrics, and the posed, aligned head model.

The head is a cranium ellipsoid ∪ a jaw ellipsoid in head coordinates (u right, v down, w towards
the camera for a frontal pose). ``Head`` rotates it by the image's pose, re-centres it the way a
5-point aligner would (eyes onto the ArcFace template) and answers surface queries: depth and
slopes, projection to face space, and local frames for features drawn flat on the surface.
"""

from __future__ import annotations

import numpy as np

# insightface's ArcFace 112×112 five-point template (x, y): eyes, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
EYE_U, EYE_V = 17.6, 3.6  # eye centres relative to the cranium centre (ArcFace template)


def axis_rotation(axis: str, angle) -> np.ndarray:
    """[N,3,3] rotations by ``angle`` (radians) about the x, y or z axis."""
    c, s = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    z, o = np.zeros_like(c), np.ones_like(c)
    rows = {
        "x": [[o, z, z], [z, c, -s], [z, s, c]],
        "y": [[c, z, s], [z, o, z], [-s, z, c]],
        "z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return np.stack([np.stack(r, -1) for r in rows], 1)


def rotation(yaw, pitch, roll) -> np.ndarray:
    """[N,3,3] camera-from-head rotation Rz(roll)·Rx(pitch)·Ry(yaw); x right, y down, z to the camera."""
    return axis_rotation("z", roll) @ axis_rotation("x", pitch) @ axis_rotation("y", yaw)


def quadric_matrix(rot: np.ndarray, semi) -> np.ndarray:
    """M = rot·diag(1/semi²)·rotᵀ: the ellipsoid {d : dᵀMd <= 1} after rotation ``rot``."""
    inv = np.stack([1 / np.asarray(s, np.float32) ** 2 * np.ones(rot.shape[0], np.float32) for s in semi], 1)
    return np.einsum("nij,nj,nkj->nik", rot, inv, rot).astype(np.float32)


class Head:
    """Head geometry of a batch: rotation, head centre in face coordinates, surface queries."""

    def __init__(self, ip: dict, mp: dict):
        self.ip, self.R = ip, rotation(mp["yaw"], mp["pitch"], mp["roll"])
        # A 5-point aligner re-centres the eyes: fully in y, 80 % in x (profiles stay off-centre).
        eye_mid = self.project(np.zeros_like(ip["A"]), np.full_like(ip["A"], EYE_V), center=False)
        self.cx = (56.0 - 0.8 * eye_mid[0]).astype(np.float32)
        self.cy = (51.6 - eye_mid[1]).astype(np.float32)

    def surface(self, u, v):
        """Depth w and slopes (dw/du, dw/dv) of the face surface (cranium ∪ jaw) at (u, v)."""
        ip = self.ip
        out = []
        cranium = ((0, 0), (ip["A"], ip["B"], ip["C"]))
        jaw = ((ip["jv"], ip["jz"]), (ip["jA"], ip["jB"], ip["jC"]))
        for (ov, ow), (a, b, c) in (cranium, jaw):
            x, y = u / a, (v - ov) / b
            t = np.sqrt(np.maximum(1 - x * x - y * y, 0.02))
            out.append((ow + c * t, -c * x / (a * t), -c * y / (b * t)))
        jaw = out[1][0] > out[0][0]
        return tuple(np.where(jaw, j, k).astype(np.float32) for k, j in zip(out[0], out[1]))

    def project(self, u, v, w=None, center=True):
        """Face-space (x, y, z) of head point (u, v, w); w defaults to the surface."""
        if w is None:
            w = self.surface(u, v)[0]
        q = np.stack([u, v, w], 1).astype(np.float32)
        p = np.einsum("nij,nj->ni", self.R, q)
        if center:
            p[:, 0] += self.cx
            p[:, 1] += self.cy
        return p[:, 0], p[:, 1], p[:, 2]

    def frame(self, u, v):
        """A feature drawn flat on the surface at (u, v): centre, face→local 2×2 map, facing."""
        w, wu, wv = self.surface(u, v)
        x, y, _ = self.project(u, v, w)
        tu = np.einsum("nij,nj->ni", self.R, np.stack([np.ones_like(u), np.zeros_like(u), wu], 1))
        tv = np.einsum("nij,nj->ni", self.R, np.stack([np.zeros_like(u), np.ones_like(u), wv], 1))
        normal = np.stack([-wu, -wv, np.ones_like(u)], 1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        facing = np.einsum("nj,nj->n", self.R[:, 2, :], normal)
        det = tu[:, 0] * tv[:, 1] - tv[:, 0] * tu[:, 1]
        det = np.where(np.abs(det) < 0.05, np.where(det < 0, -0.05, 0.05), det)
        inv = np.stack([np.stack([tv[:, 1], -tv[:, 0]], -1), np.stack([-tu[:, 1], tu[:, 0]], -1)], 1) / det[:, None, None]
        vis = np.clip((facing - 0.05) / 0.25, 0, 1)
        return x.astype(np.float32), y.astype(np.float32), inv.astype(np.float32), vis.astype(np.float32)
