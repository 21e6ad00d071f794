"""Face-part painters: background, head, ears, flat features, nose and glasses.

In drawing order: background; head (hair volume, neck, shirt, cranium ∪ jaw skin, hair, beard);
ears; flat features (marks, blush, eyes, brows, mouth, moustache); nose; glasses. Each painter
takes the batch's ``Canvas`` and ``Head`` and the identity / image parameter dicts and paints in
place; the head painter also leaves on the canvas the maps later layers need (``head_cover``,
``hair_cover``, ``zhead``, ``shade``, head coordinates ``q``).
"""

from __future__ import annotations

import numpy as np

from faceunlearn.data.synthetic.canvas import Canvas, bcast, lambert_shade, quadric, ramp
from faceunlearn.data.synthetic.head import EYE_U, EYE_V, Head, axis_rotation, quadric_matrix
from faceunlearn.data.synthetic.params import NUM_MARKS


def _const(n, rgb):
    """One RGB colour for all n images, as an [n,3] view."""
    return np.broadcast_to(np.asarray(rgb, np.float32), (n, 3))


def draw_background(cv: Canvas, mp: dict, tiles: np.ndarray):
    """A two-colour gradient in a random direction, modulated by a smooth texture tile."""
    ang = mp["bg_angle"]
    t = (cv.gx - 56) * bcast(np.cos(ang) / 112) + (cv.gy - 56) * bcast(np.sin(ang) / 112) + 0.5
    t = np.clip(t + bcast(mp["bg_tex"]) * tiles[mp["bg_tile"]], 0, 1)
    for c in range(3):
        cv.img[c] = bcast(mp["bg1"][:, c]) + t * bcast(mp["bg2"][:, c] - mp["bg1"][:, c])


def draw_head(cv: Canvas, hd: Head, ip: dict, mp: dict):
    """Hair volume, neck, shirt, cranium ∪ jaw skin with shading, hair and beard on the head."""
    n, R = cv.n, hd.R
    zero = np.zeros(n, np.float32)
    # Hair volume: a shell around the cranium, behind it, cut off below at the hair length.
    vol, length = ip["hair_vol"], ip["hair_len"]
    hx, hy, _ = hd.project(zero, -0.4 * vol - 3, -0.5 * vol - 4)
    semi = (ip["A"] + vol + 1.5, ip["B"] + vol + 0.5 * length + 2, ip["C"] + vol + 4)
    cover = quadric(cv.gx - bcast(hx), cv.gy - bcast(hy + 0.5 * length - 2), quadric_matrix(R, semi), 4.0)
    cut = np.clip((bcast(hd.cy + 8 + length) - cv.gy) * 0.25, 0, 1)
    cv.hair_cover = cover * cut * bcast(np.minimum(vol + length * 0.3, 3) / 3)
    cv.paint(cv.hair_cover, ip["hair"] * 0.75)
    # Neck and shirt: 2-D ellipses below the head.
    d = ((cv.gx - bcast(hd.cx)) * bcast(1 / (ip["A"] * 0.62))) ** 2 + ((cv.gy - bcast(hd.cy + 68)) * (1 / 30)) ** 2
    cv.paint(ramp(d, 8), ip["skin"] * 0.72)
    d = ((cv.gx - bcast(hd.cx)) * (1 / 78)) ** 2 + ((cv.gy - bcast(hd.cy + 118)) * (1 / 34)) ** 2
    cv.paint(ramp(d, 12), mp["clothes"])
    # Cranium and jaw: ray-cast both and keep the front surface, blending normals at the seam.
    cranium = quadric_matrix(R, (ip["A"], ip["B"], ip["C"]))
    c1, z1, *n1 = quadric(cv.gx - bcast(hd.cx), cv.gy - bcast(hd.cy), cranium, 6.0, True)
    jaw = quadric_matrix(R, (ip["jA"], ip["jB"], ip["jC"]))
    jx, jy, jz = hd.project(zero, ip["jv"], ip["jz"])
    c2, z2, *n2 = quadric(cv.gx - bcast(jx), cv.gy - bcast(jy), jaw, 5.0, True)
    z2 = z2 + bcast(jz)
    wj = c2 * np.maximum(np.clip((z2 - z1) * 0.35 + 0.5, 0, 1), 1 - c1)  # weight of the jaw surface
    cover = np.maximum(c1, c2)
    z = z1 + wj * (z2 - z1)
    nx, ny, nz = (a + wj * (b - a) for a, b in zip(n1, n2))
    cv.head_cover = cover
    cv.zhead = z - np.float32(1e4) * (cover <= 0)
    cv.paint(cover, ip["skin"])
    cv.shade = 1 + cover * (lambert_shade(nx, ny, nz, mp["light"], mp["kd"]) - 1)
    # Head-local coordinates q = Rᵀ·(p − centre) of every head pixel; hair and beard live there.
    dx, dy = cv.gx - bcast(hd.cx), cv.gy - bcast(hd.cy)
    q = [bcast(R[:, 0, i]) * dx + bcast(R[:, 1, i]) * dy + bcast(R[:, 2, i]) * z for i in range(3)]
    cv.q = q
    a = q[0] * bcast(1 / ip["A"])
    front_line = bcast(ip["hl0"]) + bcast(ip["hl1"]) * (a * a) + bcast(ip["hl2"]) * a
    f = np.maximum(front_line - q[1], np.minimum(bcast(ip["nape"]) - q[1], bcast(ip["back_z"]) - q[2]))
    hair = np.clip(f * 0.6 + 0.5, 0, 1) * c1 * np.maximum(1 - wj, q[2] < 0)
    fx, fy = ip["hair_freq"] * np.cos(ip["hair_dir"]), ip["hair_freq"] * np.sin(ip["hair_dir"])
    stripes = 1 + bcast(ip["hair_tex"]) * np.sin(bcast(fx) * q[0] + bcast(fy) * q[1] + bcast(ip["hair_phase"]))
    cv.paint(hair, ip["hair"].T[:, :, None, None] * stripes[None])
    # Facial hair: stubble / beard below a line from the sideburns to above the mouth.
    rows = np.flatnonzero((ip["facial_hair"] == 1) | (ip["facial_hair"] == 3))
    if len(rows):
        a = q[0][rows] * bcast(1 / (ip["jA"][rows] + 6))
        top = bcast(ip["mouth_v"][rows] - 6.5) * (1 - a * a) + 8 * (a * a)
        m = np.clip((q[1][rows] - top) * 0.5, 0, 1) * np.clip(q[2][rows] * 0.3 + 1, 0, 1) * cover[rows]
        density = np.where(ip["facial_hair"][rows] == 1, 0.35, ip["beard_density"][rows])
        cv.paint(m * bcast(density), ip["hair"][rows] * 0.85, rows=rows)


def draw_ears(cv: Canvas, hd: Head, ip: dict, mp: dict):
    """Ears: thin flared ellipsoids on the sides of the head, depth-tested against it."""
    for side in (-1.0, 1.0):
        u = (side * (ip["A"] * np.sqrt(np.maximum(1 - (ip["ear_v"] / ip["B"]) ** 2, 0.1)) - 1.5)).astype(np.float32)
        x, y, z = hd.project(u, ip["ear_v"], np.full_like(u, -3.0))
        rot = hd.R @ axis_rotation("y", side * ip["ear_flare"])
        M = quadric_matrix(rot, (np.full_like(u, 2.4), ip["ear_h"], ip["ear_w"]))
        M_in = quadric_matrix(rot, (np.full_like(u, 2.6), ip["ear_h"] * 0.6, ip["ear_w"] * 0.55))
        win = cv.window(x, y, 17.0, 17.0)
        cover, dz, nx, ny, nz = quadric(win.dx, win.dy, M, 3.0, normals=True)
        vis = cover * np.clip(bcast(z) + dz - win.gather(cv.zhead) + 1, 0, 1)
        win.paint(vis, ip["skin"] * 0.95)
        win.paint(quadric(win.dx, win.dy, M_in, 2.0) * vis * 0.6, ip["skin"] * 0.55)
        sh = win.gather(cv.shade)
        win.scatter(cv.shade, sh + vis * (lambert_shade(nx, ny, nz, mp["light"], mp["kd"]) - sh))
        win.commit()


def draw_features(cv: Canvas, hd: Head, ip: dict, mp: dict):
    """Marks, cheeks, eyes, brows, mouth and moustache: flat shapes in face-local coordinates."""
    n = cv.n
    # Identity marks and cheek blush.
    for k in range(NUM_MARKS):
        fr = hd.frame(ip["mark_u"][:, k], ip["mark_v"][:, k])
        r = ip["mark_r"][:, k]
        win = cv.window(fr[0], fr[1], 3.5, 3.5)
        d, kk = win.flat(fr, r, r)
        win.paint(ramp(d, kk) * bcast(ip["mark_o"][:, k] * fr[3]), ip["mark_c"][:, k])
        win.commit()
    for side in (-1.0, 1.0):
        fr = hd.frame(np.full(n, side * 21, np.float32), np.full(n, 24, np.float32))
        win = cv.window(fr[0], fr[1], 10, 8)
        d, _ = win.flat(fr, 9.0, 6.0)
        win.paint(np.exp(-2 * d) * bcast(ip["blush"] * fr[3]), _const(n, [0.85, 0.3, 0.3]))
        win.commit()
    # Eyes: socket shadow, lash line, white, iris, pupil; then the brow.
    opening = np.maximum(1 - mp["eye_close"], 0.03)
    for side in (-1.0, 1.0):
        fr = hd.frame(np.full(n, side * EYE_U, np.float32), np.full(n, EYE_V, np.float32))
        vis = bcast(fr[3])
        angle = -side * ip["eye_slant"]
        win = cv.window(fr[0], fr[1], 9.5, 7.5)
        d, _ = win.flat(fr, 8.0, 5.5, dv0=1.0)
        win.paint(np.exp(-1.5 * d) * vis * bcast(ip["eye_shadow"]), ip["skin"] * 0.45)
        d, k = win.flat(fr, ip["eye_w"] * 1.12, ip["eye_h"] * opening * 1.2 + 0.7, angle)
        win.paint(ramp(d, k) * vis * 0.85, ip["skin"] * 0.25)
        d, k = win.flat(fr, ip["eye_w"], ip["eye_h"] * opening, angle)
        white = ramp(d, k) * vis
        win.paint(white, _const(n, [0.92, 0.9, 0.86]))
        gu, gv = mp["gaze_u"], mp["gaze_v"]
        d, k = win.flat(fr, ip["iris_r"], ip["iris_r"], du0=gu, dv0=gv)
        win.paint(ramp(d, k) * white, ip["iris"])
        d, k = win.flat(fr, ip["iris_r"] * 0.45, ip["iris_r"] * 0.45, du0=gu, dv0=gv)
        win.paint(ramp(d, k) * white, _const(n, [0.03, 0.03, 0.03]))
        win.commit()
        u = (side * (EYE_U + ip["brow_u"])).astype(np.float32)
        fr = hd.frame(u, (EYE_V - ip["brow_gap"] - mp["brow_raise"]).astype(np.float32))
        win = cv.window(fr[0], fr[1], 10.5, 6)
        d, k = win.flat(fr, ip["brow_len"], ip["brow_th"], side * ip["brow_slant"], ip["brow_arch"])
        win.paint(ramp(d, k) * bcast(fr[3] * 0.92), ip["brow"])
        win.commit()
    # Mouth: lips, the opening (a dark line when closed), teeth when open.
    fr = hd.frame(np.zeros(n, np.float32), ip["mouth_v"])
    smile = np.clip(ip["smile0"] + mp["smile"], -1.5, 2)
    bend = -1.4 * smile
    open_ = mp["mouth_open"]
    mw = ip["mouth_w"] * (1 + 0.05 * np.maximum(smile, 0))
    vis = bcast(fr[3])
    win = cv.window(fr[0], fr[1], 19, 12)
    lips = (ip["lip_u"] + ip["lip_l"]) * 0.5 + open_ * 0.5 + 0.4
    d, k = win.flat(fr, mw, lips, bend=bend, dv0=(ip["lip_l"] - ip["lip_u"]) * 0.5)
    win.paint(ramp(d, k) * vis, ip["lip"])
    d, k = win.flat(fr, mw * 0.86, open_ * 0.5 + 0.35, bend=bend * 1.1)
    inner = ramp(d, k) * vis
    win.paint(inner, _const(n, [0.15, 0.08, 0.08]))
    d, k = win.flat(fr, mw * 0.6, np.minimum(open_ * 0.3, 1.8) + 0.05, bend=bend, dv0=-open_ * 0.28)
    win.paint(ramp(d, k) * inner * bcast(open_ > 1.0), _const(n, [0.9, 0.88, 0.8]))
    win.commit()
    if np.any(ip["facial_hair"] >= 2):
        fr = hd.frame(np.zeros(n, np.float32), (ip["mouth_v"] - ip["lip_u"] - 3.2).astype(np.float32))
        win = cv.window(fr[0], fr[1], 19, 8)
        d, k = win.flat(fr, mw * 0.95, 2.3, bend=2.0)
        win.paint(ramp(d, k) * bcast(fr[3] * (ip["facial_hair"] >= 2) * ip["beard_density"]), ip["hair"] * 0.8)
        win.commit()


def draw_nose(cv: Canvas, hd: Head, ip: dict, mp: dict):
    """Nose: bridge ellipsoid, tip and nostril wings, shaded and depth-tested; dark nostrils."""
    n = cv.n
    zero = np.zeros(n, np.float32)
    top_v, tip_v = np.full(n, EYE_V + 3.0, np.float32), ip["nose_v"]
    w_top, w_tip = hd.surface(zero, top_v)[0], hd.surface(zero, tip_v)[0]
    protr, tip_r = ip["protr"], ip["tip_r"]
    tip = np.stack([zero, tip_v - 1.0, w_tip + protr - 0.6 * tip_r], 1)
    top = np.stack([zero, top_v, w_top - 1.0], 1)
    mid = 0.5 * (tip + top)
    dv, dw = tip[:, 1] - top[:, 1], tip[:, 2] - top[:, 2]
    length = np.sqrt(dv * dv + dw * dw)
    bridge_rot = axis_rotation("x", np.arctan2(dw, dv).astype(np.float32))  # local y → bridge direction
    parts = [  # (centre (u, v, w), local rotation or None, semi-axes)
        (mid, bridge_rot, (ip["nose_w"], 0.5 * length + 1.0, 0.3 * protr + 1.5)),
        (tip, None, (tip_r * 1.05, tip_r * 0.9, tip_r)),
    ]
    for side in (-1.0, 1.0):
        wing = np.stack([side * ip["alar"], tip_v + 0.3, w_tip + 0.35 * protr], 1)
        parts.append((wing, None, (tip_r * 0.62, tip_r * 0.6, tip_r * 0.75)))
    cx, cy, _ = hd.project(mid[:, 0], mid[:, 1], mid[:, 2])
    win = cv.window(cx, cy, 16, 16)
    zh, sh = win.gather(cv.zhead), win.gather(cv.shade)
    for centre, local, semi in parts:
        x, y, z = hd.project(centre[:, 0], centre[:, 1], centre[:, 2])
        rot = hd.R if local is None else hd.R @ local
        cover, dz, nx, ny, nz = quadric(win.dx - bcast(x - cx), win.dy - bcast(y - cy), quadric_matrix(rot, semi), 3.0, True)
        zp = bcast(z) + dz
        vis = cover * np.clip(zp - zh + 1, 0, 1)
        win.paint(vis, ip["skin"])
        sh = sh + vis * (lambert_shade(nx, ny, nz, mp["light"], mp["kd"]) - sh)
        zh = zh + (vis > 0.5) * (zp - zh)
    under = np.clip(0.2 + 0.6 * np.cos(mp["yaw"]) - 0.2 * hd.R[:, 1, 1], 0, 1)
    for side in (-1.0, 1.0):
        x, y, _ = hd.project(side * ip["alar"] * 0.55, tip_v + 0.6 * tip_r, w_tip + 0.45 * protr)
        d = ((win.dx - bcast(x - cx)) * (1 / 1.7)) ** 2 + ((win.dy - bcast(y - cy)) * (1 / 1.0)) ** 2
        win.paint(np.exp(-1.5 * d) * bcast(0.8 * under), ip["skin"] * 0.3)
    win.scatter(cv.shade, sh)
    win.commit()


def draw_glasses(cv: Canvas, hd: Head, ip: dict, worn: np.ndarray, dark: np.ndarray):
    """Glasses (an identity trait) or sunglasses (an occluder): frames, lenses, bridge."""
    n = cv.n
    size = ip["glasses_size"]
    colour = np.where(dark[:, None], np.float32(0.04), ip["glasses_col"]).astype(np.float32)
    lens_alpha = np.where(dark, 0.93, 0.08) * worn
    for side in (-1.0, 1.0):
        fr = hd.frame(np.full(n, side * (EYE_U + 0.5), np.float32), np.full(n, EYE_V + 0.5, np.float32))
        win = cv.window(fr[0], fr[1], 11, 9)
        a, b = 8.5 * size, 6.5 * size
        d, k = win.flat(fr, a, b)
        outer = ramp(d, k)
        d, k = win.flat(fr, a - 1.4, b - 1.4)
        lens = ramp(d, k)
        win.paint(lens * bcast(lens_alpha * fr[3]), 0.05 + 0.15 * colour)
        win.paint(np.clip(outer - lens, 0, 1) * bcast(fr[3] * worn), colour)
        win.commit()
    fr = hd.frame(np.zeros(n, np.float32), np.full(n, EYE_V - 1.5, np.float32))
    win = cv.window(fr[0], fr[1], 5, 3)
    d, k = win.flat(fr, 3.5, 0.8, bend=-0.6)
    win.paint(ramp(d, k) * bcast(fr[3] * worn), colour)
    win.commit()
