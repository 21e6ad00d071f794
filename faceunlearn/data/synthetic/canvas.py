"""Rasterisation helpers: the render-size canvas, small windows, soft masks, blending, shading.

Images are planar float32 arrays [3, N, S, S] at the render size S; face-space coordinates are
those of the 112×112 output crop before the per-image similarity (scale, shift) is applied.
"""

from __future__ import annotations

import math

import numpy as np

from faceunlearn.data.packed import IMAGE_SIZE


def bcast(a):
    """[N] → [N,1,1] for broadcasting over an image or a window (scalars pass through)."""
    a = np.asarray(a, np.float32)
    return a if a.ndim == 0 else a[:, None, None]


def ramp(d, k):
    """Soft inside-mask of a shape whose normalised squared distance is d (1 on the boundary)."""
    return np.clip((1 - d) * k + 0.5, 0, 1)


def blend(planes, mask, colour):
    """In place: planes[c] ← planes[c] + mask·(colour_c − planes[c]); colour [N,3] or planar [3,N,H,W]."""
    for c in range(3):
        x = planes[c]
        col = colour[:, c, None, None] if colour.ndim == 2 else colour[c]
        x += mask * (col - x)


def quadric(dx, dy, M, edge, normals=False):
    """Orthographic ray cast of the ellipsoid dᵀMd <= 1 (centre at the origin) on a grid.

    Returns the coverage (soft silhouette) and, with ``normals``, the front depth dz and the
    unit normal (nx, ny, nz).
    """
    m = lambda i, j: bcast(M[:, i, j])  # noqa: E731
    mzz = m(2, 2)
    bxy = m(0, 2) * dx + m(1, 2) * dy
    q = m(0, 0) * (dx * dx) + m(1, 1) * (dy * dy) + (2 * m(0, 1)) * (dx * dy)
    disc = bxy * bxy - mzz * (q - 1)
    cover = np.clip(disc * (np.float32(edge) / mzz), 0, 1)
    if not normals:
        return cover
    dz = (np.sqrt(np.maximum(disc, 0)) - bxy) / mzz
    nx = m(0, 0) * dx + m(0, 1) * dy + m(0, 2) * dz
    ny = m(0, 1) * dx + m(1, 1) * dy + m(1, 2) * dz
    nz = m(0, 2) * dx + m(1, 2) * dy + mzz * dz
    inv = 1 / np.sqrt(nx * nx + ny * ny + nz * nz + 1e-12)
    return cover, dz, nx * inv, ny * inv, nz * inv


def lambert_shade(nx, ny, nz, light, kd):
    """Lambert shading, ambient ``1 − 0.7·kd``, darkened towards silhouettes (normal z → 0)."""
    lam = np.maximum(nx * bcast(light[:, 0]) + ny * bcast(light[:, 1]) + nz * bcast(light[:, 2]), 0)
    return (1 - 0.7 * bcast(kd) + bcast(0.8 * kd) * lam) * (0.75 + 0.25 * np.maximum(nz, 0))


class Canvas:
    """The render-size image plus the maps later layers need (head depth, shading, head coords).

    ``img`` is [3,N,S,S]; ``gx`` / ``gy`` are the face-space x of the columns / y of the rows.
    ``draw_head`` adds ``hair_cover``, ``head_cover``, ``zhead`` (head depth, −1e4 off the head),
    ``shade`` (multiplied in once the shaded layers are painted) and ``q`` (head coordinates).
    """

    def __init__(self, n: int, size: int, mp: dict):
        self.n, self.size, self.step = n, size, IMAGE_SIZE / size
        self.scale, self.tx, self.ty = mp["scale"], mp["tx"], mp["ty"]
        idx = np.arange(size, dtype=np.float32)
        self.gx = self.face_coord(idx[None, None, :], self.tx)  # [N,1,S] face-space x of the columns
        self.gy = self.face_coord(idx[None, :, None], self.ty)  # [N,S,1]
        self.img = np.empty((3, n, size, size), np.float32)

    def face_coord(self, pix, t):
        """Face-space coordinate of render pixel ``pix`` (the crop is a similarity of face space)."""
        out = (pix + 0.5) * self.step - 0.5
        return ((out - 56.0 - bcast(t)) / bcast(self.scale) + 56.0).astype(np.float32)

    def pixel(self, x, t):
        """Render-pixel coordinate of face-space coordinate ``x`` (the inverse of ``face_coord``)."""
        return ((56.0 + (x - 56.0) * self.scale + t) + 0.5) / self.step - 0.5

    def paint(self, mask, colour, rows=None):
        """Alpha-blend ``colour`` under ``mask`` into every image, or only into images ``rows``."""
        if rows is None:
            blend(self.img, mask, colour)
        else:
            sub = self.img[:, rows]
            blend(sub, mask, colour)
            self.img[:, rows] = sub

    def window(self, x, y, half_w, half_h) -> "Window":
        """A ``Window`` around face-space centres (x, y) with room for ±(half_w, half_h)."""
        return Window(self, x, y, half_w, half_h)


class Window:
    """A fixed-size patch around a per-image centre, for cheap rendering of small parts."""

    def __init__(self, canvas: Canvas, x, y, half_w, half_h):
        self.canvas = canvas
        S = canvas.size
        w = min(int(math.ceil(2 * half_w * 1.06 / canvas.step)) + 2, S)
        h = min(int(math.ceil(2 * half_h * 1.06 / canvas.step)) + 2, S)
        ix = np.clip(np.round(canvas.pixel(x, canvas.tx) - (w - 1) / 2), 0, S - w).astype(np.int64)
        iy = np.clip(np.round(canvas.pixel(y, canvas.ty) - (h - 1) / 2), 0, S - h).astype(np.int64)
        cols = ix[:, None, None] + np.arange(w)[None, None, :]
        rows = iy[:, None, None] + np.arange(h)[None, :, None]
        self.lin = (np.arange(canvas.n) * (S * S))[:, None, None] + rows * S + cols  # flat pixel index
        self.dx = canvas.face_coord(cols.astype(np.float32), canvas.tx) - bcast(x)  # [N,1,w]
        self.dy = canvas.face_coord(rows.astype(np.float32), canvas.ty) - bcast(y)  # [N,h,1]
        self.img = np.stack([self.gather(plane) for plane in canvas.img])

    def gather(self, full):
        """The window's pixels of a full [N,S,S] map."""
        return full.reshape(-1).take(self.lin)

    def scatter(self, full, values):
        """Write the window's pixels back into a full [N,S,S] map."""
        full.reshape(-1)[self.lin] = values

    def paint(self, mask, colour):
        blend(self.img, mask, colour)

    def flat(self, frame, half_a, half_b, angle=0.0, bend=0.0, du0=0.0, dv0=0.0):
        """Normalised squared distance to a flat ellipse drawn on the face surface, and ramp gain.

        The ellipse has half-axes (half_a, half_b) in face-local units, is rotated by ``angle``,
        offset by (du0, dv0) from the frame's anchor, and bent so that its centre line is
        dv = bend·(du/half_a)² (a smile, an arched brow).
        """
        inv = frame[2]
        du = bcast(inv[:, 0, 0]) * self.dx + bcast(inv[:, 0, 1]) * self.dy - bcast(du0)
        dv = bcast(inv[:, 1, 0]) * self.dx + bcast(inv[:, 1, 1]) * self.dy - bcast(dv0)
        if not np.isscalar(angle):
            c, s = bcast(np.cos(angle)), bcast(np.sin(angle))
            du, dv = c * du + s * dv, c * dv - s * du
        e1 = du / bcast(half_a)
        e2 = (dv - bcast(bend) * (e1 * e1)) / bcast(half_b)
        k = np.maximum(np.minimum(half_a, half_b), 0.05) / (2 * self.canvas.step)
        return e1 * e1 + e2 * e2, bcast(k)

    def commit(self):
        """Write the painted patch back into the canvas image."""
        for plane, patch in zip(self.canvas.img, self.img):
            self.scatter(plane, patch)
