"""Occluders (the ``occlusion_prob`` nuisance): face mask, hat, hand and textured patch.

Sunglasses are drawn by ``draw.draw_glasses``. The face mask and hat sit on the head and take its
shading; the hand and patch are in front of the face and are painted after shading.
"""

from __future__ import annotations

import numpy as np

from faceunlearn.data.synthetic.canvas import Canvas, bcast, ramp
from faceunlearn.data.synthetic.head import Head
from faceunlearn.data.synthetic.params import SKIN_DARK, SKIN_LIGHT


def draw_occluders_on_face(cv: Canvas, hd: Head, ip: dict, mp: dict):
    """Occluders that sit on the head and take its shading: a face mask or a hat."""
    occ = mp["occluder"]
    rows = np.flatnonzero(occ == 2)
    if len(rows):  # face mask: the front of the head from mid-nose down
        q1, q2 = cv.q[1][rows], cv.q[2][rows]
        m = np.clip((q1 - bcast(ip["nose_v"][rows] - 6)) * 0.6, 0, 1) * np.clip(q2 * 0.4 - 1.0, 0, 1) * cv.head_cover[rows]
        cv.paint(m, mp["occ_col"][rows], rows=rows)
    rows = np.flatnonzero(occ == 3)
    if len(rows):  # hat: the head and hair above a line, plus a crown above the head
        line = hd.cy[rows] - 12 - 14 * mp["occ_level"][rows] + hd.R[rows, 1, 2] * 30
        gx, gy = cv.gx[rows], cv.gy[rows]
        crown = np.clip((1 - ((gx - bcast(hd.cx[rows])) * (1 / 45)) ** 2 - ((gy - bcast(line)) * (1 / 32)) ** 2) * 4, 0, 1)
        cover = np.maximum(np.maximum(cv.head_cover[rows], cv.hair_cover[rows]), crown)
        cv.paint(cover * np.clip((bcast(line) - gy) * 0.5, 0, 1), mp["occ_col"][rows], rows=rows)


def draw_occluders_in_front(cv: Canvas, mp: dict, tiles: np.ndarray):
    """Occluders between the camera and the face (not shaded by it): a hand or a random patch."""
    occ = mp["occluder"]
    rows = np.flatnonzero(occ == 4)
    if len(rows):  # hand: a palm and four fingers, rotated
        skin = SKIN_LIGHT + mp["hand_tone"][rows][:, None] * (SKIN_DARK - SKIN_LIGHT)
        gx, gy = cv.gx[rows], cv.gy[rows]
        ang = mp["occ_angle"][rows]
        c, s = np.cos(ang), np.sin(ang)
        px, py = mp["occ_x"][rows], mp["occ_y"][rows] + 10
        hand = np.zeros((len(rows), cv.size, cv.size), np.float32)
        pieces = [(0.0, 0.0, 14.0, 17.0)] + [(-9.0 + 6.0 * f, -24.0 + 2.5 * abs(f - 1.5), 3.0, 10.0) for f in range(4)]
        for ox, oy, ha, hb in pieces:
            dx, dy = gx - bcast(px + c * ox - s * oy), gy - bcast(py + s * ox + c * oy)
            u, v = dx * bcast(c) + dy * bcast(s), dy * bcast(c) - dx * bcast(s)
            hand = np.maximum(hand, ramp((u * (1 / ha)) ** 2 + (v * (1 / hb)) ** 2, ha / (2 * cv.step)))
        shade = 0.85 + 0.3 * np.clip((gx - bcast(px)) * (1 / 40), -0.5, 0.5)
        cv.paint(hand, skin.T[:, :, None, None] * shade[None], rows=rows)
    rows = np.flatnonzero(occ == 5)
    if len(rows):  # patch: a textured rectangle
        dx = np.abs(cv.gx[rows] - bcast(mp["occ_x"][rows])) - bcast(mp["occ_w"][rows])
        dy = np.abs(cv.gy[rows] - bcast(mp["occ_y"][rows])) - bcast(mp["occ_h"][rows])
        m = np.clip(0.5 - np.maximum(dx, dy) * (1 / cv.step), 0, 1)
        tex = np.clip(tiles[mp["bg_tile"][rows] ^ 5] + 0.5, 0, 1)
        c1, c2 = mp["occ_col"][rows].T[:, :, None, None], mp["occ_col2"][rows].T[:, :, None, None]
        cv.paint(m, c1 + tex[None] * (c2 - c1), rows=rows)
