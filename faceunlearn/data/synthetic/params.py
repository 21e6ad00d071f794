"""What varies per identity and per image: the knobs, ``identity_params`` and ``image_params``.

Parameters are plain dicts of per-row NumPy arrays (lengths in output pixels of the 112×112 crop,
angles in radians, colours in [0, 1] RGB), drawn from ``faceunlearn.data.synthetic.hashing`` streams.
Identity parameters are what a model has to learn to recognise; image parameters are the
nuisances it must become invariant to.
"""

from __future__ import annotations

import math

import numpy as np

from faceunlearn.data.synthetic.hashing import STREAM_IDENTITY, STREAM_IMAGE, Draws, IdentityDraws, hash_keys

VIEWS = {"any": 0, "frontal": 1, "profile": 2}

DEFAULT_KNOBS: dict = {
    # How far identities sit from the mean face (multiplies every identity parameter's spread).
    "identity_spread": 1.0,
    # Per-image redraw of identity parameters, as a fraction of their spread (hair cut, tan, ...).
    "identity_jitter": 0.1,
    # Pose limits in degrees. "any" views draw yaw uniformly in ±max_yaw with probability
    # wide_pose_prob and near-frontal (sd 15°) otherwise; "frontal" is |yaw| <= 15°, "profile"
    # is |yaw| in [60°, 90°]. Pitch and roll are normal, clipped at max_pitch / max_roll.
    "max_yaw": 90.0,
    "max_pitch": 25.0,
    "max_roll": 10.0,
    "wide_pose_prob": 0.75,
    # Directional light: Lambert shading from a random direction, diffuse weight up to 0.8 ×
    # lighting (0 = flat light, 1 = strong).
    "lighting": 0.5,
    # Camera colour: brightness, contrast, colour temperature, saturation (and 5 % grey-scale
    # images at 1.0) scaled by this (0 = neutral, 1 = strong, which is much harder).
    "colour_jitter": 0.15,
    # Probability of an occluder (sunglasses, face mask, hat, hand, textured patch) per image.
    "occlusion_prob": 0.1,
    # Sensor noise (sd up to 0.04 × noise of the range) and blur (up to two 3×3 box passes at the
    # render size × blur, in half of the images).
    "noise": 0.5,
    "blur": 0.5,
    # Internal render resolution, bilinearly upsampled to 112 (speed/detail trade-off).
    "render_size": 56,
}

# Palettes: skin tones lie on a light–dark line; hair and iris colours with their frequencies.
SKIN_LIGHT = np.array([0.97, 0.83, 0.72], np.float32)
SKIN_DARK = np.array([0.33, 0.21, 0.15], np.float32)
_HAIR = np.array(
    [[0.06, 0.05, 0.05], [0.18, 0.12, 0.08], [0.36, 0.24, 0.14], [0.74, 0.60, 0.38], [0.55, 0.23, 0.10], [0.62, 0.61, 0.60]],
    np.float32,
)
_HAIR_P = [0.3, 0.25, 0.18, 0.12, 0.07, 0.08]
_IRIS = np.array(
    [[0.20, 0.12, 0.07], [0.38, 0.24, 0.12], [0.45, 0.40, 0.18], [0.25, 0.45, 0.30], [0.25, 0.45, 0.70], [0.50, 0.55, 0.60]],
    np.float32,
)
_IRIS_P = [0.35, 0.2, 0.12, 0.1, 0.15, 0.08]
NUM_MARKS = 6  # moles / birthmarks per identity (each present with probability 0.6)


def _col(draws: Draws, lo=0.0, hi=1.0) -> np.ndarray:
    """[N,3] colours, each channel uniform in [lo, hi)."""
    return np.stack([draws.uniform(lo, hi) for _ in range(3)], axis=1)


def identity_params(seed: int, identities: np.ndarray, image_hash: np.ndarray, knobs: dict) -> dict:
    """Per-row identity parameters (lengths in output pixels, colours in [0, 1] RGB).

    Drawn from hashes of ``(seed, identity)``; ``image_hash`` adds the small per-image redraw
    (``identity_jitter``).
    """
    ident = Draws(hash_keys(seed, STREAM_IDENTITY, identities), 192)
    img = Draws(hash_keys(image_hash, STREAM_IDENTITY), 160)
    d = IdentityDraws(ident, img, knobs["identity_spread"], knobs["identity_jitter"])
    p: dict = {}
    # Face shape: cranium ellipsoid centred at the origin, jaw ellipsoid below and in front.
    p["A"], p["B"], p["C"] = d.g(40, 2.5, 33, 47), d.g(50, 2.5, 43, 57), d.g(47, 3, 38, 56)
    p["jA"], p["jB"], p["jC"] = d.g(32, 3.2, 24, 40), d.g(30, 2.5, 24, 37), d.g(36, 3, 28, 44)
    p["jv"], p["jz"] = d.g(32, 2.5, 25, 39), d.g(6, 3, -2, 14)
    # Eyes, brows.
    p["eye_w"], p["eye_h"] = d.g(5.6, 0.6, 4.2, 7.2), d.g(2.6, 0.4, 1.6, 3.6)
    p["eye_slant"], p["iris_r"] = d.g(0.0, 0.1, -0.25, 0.25), d.g(2.3, 0.25, 1.7, 2.9)
    p["brow_gap"], p["brow_th"] = d.g(7.5, 1.2, 4.5, 11), d.g(1.3, 0.35, 0.6, 2.4)
    p["brow_len"], p["brow_slant"] = d.g(7.5, 1.0, 5, 10), d.g(0.08, 0.14, -0.3, 0.45)
    p["brow_arch"], p["brow_u"] = d.g(1.2, 0.9, -1, 3.5), d.g(0.5, 1.0, -2, 3)
    # Nose: tip height, bridge width, tip size, protrusion, nostril wings.
    p["nose_v"], p["nose_w"] = d.g(23.7, 2.0, 18, 29), d.g(3.0, 0.6, 1.8, 4.5)
    p["tip_r"], p["protr"], p["alar"] = d.g(3.8, 0.6, 2.6, 5.2), d.g(9, 2, 4, 14), d.g(4.2, 0.7, 2.8, 6)
    # Mouth.
    p["mouth_v"], p["mouth_w"] = d.g(44.3, 2.2, 38, 50), d.g(14.6, 1.5, 11, 18.5)
    p["lip_u"], p["lip_l"], p["smile0"] = d.g(1.7, 0.5, 0.7, 3), d.g(2.3, 0.5, 1.2, 3.6), d.g(0.0, 0.4, -1, 1)
    # Ears.
    p["ear_v"], p["ear_h"], p["ear_w"] = d.g(16, 3, 8, 24), d.g(11.5, 1.5, 8, 15), d.g(6.5, 1.0, 4.5, 9)
    p["ear_flare"] = d.g(0.45, 0.15, 0.1, 0.8)
    # Colours. Skin tone is a point on a light–dark line plus redness / yellowness.
    tone = 0.5 + knobs["identity_spread"] * (ident.uniform() - 0.5) + 0.04 * knobs["identity_jitter"] * img.normal()
    tone = np.clip(tone, 0, 1)
    red, yellow = d.g(0, 0.035), d.g(0, 0.03)
    skin = SKIN_LIGHT + tone[:, None] * (SKIN_DARK - SKIN_LIGHT)
    skin = skin + red[:, None] * np.float32([1.0, -0.3, -0.5]) + yellow[:, None] * np.float32([0.4, 0.4, -0.9])
    p["skin"] = np.clip(skin, 0.05, 1).astype(np.float32)
    hair = _HAIR[ident.choice(_HAIR_P)] * (1 + d.g(0, 0.12))[:, None] + 0.03 * np.stack([d.g(0, 1) for _ in range(3)], 1)
    p["hair"] = np.clip(hair, 0.02, 1).astype(np.float32)
    p["brow"] = (0.55 * p["hair"] + 0.45 * np.array([0.08, 0.06, 0.05], np.float32)).astype(np.float32)
    iris = _IRIS[ident.choice(_IRIS_P)] * (1 + d.g(0, 0.12))[:, None]
    p["iris"] = np.clip(iris, 0, 1).astype(np.float32)
    lip = p["skin"] * np.float32([0.9, 0.62, 0.62]) + d.g(0.03, 0.03)[:, None] * np.float32([1, -0.5, -0.3])
    p["lip"] = np.clip(lip, 0, 1)
    p["blush"], p["eye_shadow"] = d.g(0.12, 0.1, 0, 0.4), d.g(0.15, 0.08, 0, 0.4)
    # Hair style: front hair line v = hl0 + hl1·(x/A)² + hl2·(x/A) in head coordinates, back of
    # the head covered down to the nape, a volume shell around the head, and a length.
    bald = ident.uniform() < 0.08
    p["hl0"] = np.where(bald, -75, d.g(-26, 7, -45, -8)).astype(np.float32)
    p["hl1"] = np.where(bald, 70, d.g(32, 8, 10, 55)).astype(np.float32)
    p["hl2"] = d.g(0, 6, -15, 15)
    p["nape"], p["back_z"] = d.g(28, 8, 5, 45), d.g(-8, 8, -30, 10)
    p["hair_vol"] = np.where(bald, 0, np.abs(d.g(0, 6, -16, 16))).astype(np.float32)
    length = ident.choice([0.55, 0.2, 0.25])
    p["hair_len"] = np.clip(np.array([8, 30, 62], np.float32)[length] + d.g(0, 6), 0, 80).astype(np.float32)
    # Hair texture: stripes (waves, curls) of identity-specific frequency, direction, strength.
    p["hair_freq"], p["hair_dir"] = ident.uniform(0.25, 1.1), ident.uniform(0, np.pi)
    p["hair_tex"], p["hair_phase"] = d.g(0.2, 0.1, 0, 0.45), ident.uniform(0, 2 * np.pi)
    # Facial hair: 0 none, 1 stubble, 2 moustache, 3 beard; glasses with a frame colour and size.
    p["facial_hair"] = ident.choice([0.6, 0.15, 0.1, 0.15])
    p["beard_density"] = d.g(0.8, 0.12, 0.4, 1.0)
    p["glasses"] = (ident.uniform() < 0.12) & (img.uniform() < 0.8)
    frames = np.float32([[0.05, 0.05, 0.05], [0.45, 0.3, 0.15], [0.7, 0.7, 0.72], [0.5, 0.1, 0.1]])
    p["glasses_col"] = frames[ident.choice([0.5, 0.25, 0.15, 0.1])]
    p["glasses_size"] = d.g(1.0, 0.08, 0.8, 1.2)
    # Marks in face-local (u, v) coordinates: position, radius, colour, opacity.
    mu, mv, mr, mo, mc = [], [], [], [], []
    for _ in range(NUM_MARKS):
        mu.append(ident.uniform(-30, 30))
        mv.append(ident.uniform(-28, 54))
        mr.append(ident.uniform(0.9, 2.8))
        present = ident.uniform() < 0.6
        mo.append(np.where(present, ident.uniform(0.35, 0.8), 0).astype(np.float32))
        kind = ident.uniform() < 0.75  # dark mole or reddish birthmark
        mc.append(np.where(kind[:, None], np.float32([0.25, 0.15, 0.1]), np.float32([0.7, 0.3, 0.3])))
    p["mark_u"], p["mark_v"], p["mark_r"], p["mark_o"] = (np.stack(x, 1).astype(np.float32) for x in (mu, mv, mr, mo))
    p["mark_c"] = np.stack(mc, 1).astype(np.float32)
    return p


def image_params(image_hash: np.ndarray, view: str, knobs: dict) -> dict:
    """Per-image nuisance parameters: pose, alignment error, expression, light, degradations."""
    n = len(image_hash)
    d = Draws(hash_keys(image_hash, STREAM_IMAGE), 128)
    deg = math.pi / 180
    p: dict = {}
    max_yaw = knobs["max_yaw"]
    if view == "frontal":
        yaw = d.uniform(-1, 1) * min(15.0, max_yaw)
        pitch = d.normal(2) * min(6.0, knobs["max_pitch"])
    elif view == "profile":
        sign = np.where(d.uniform() < 0.5, -1, 1)
        yaw = sign * d.uniform(60, 90)
        pitch = d.normal(2) * knobs["max_pitch"] * 0.4
    else:
        wide = d.uniform() < knobs["wide_pose_prob"]
        yaw = np.where(wide, d.uniform(-1, 1) * max_yaw, np.clip(d.normal() * 15, -max_yaw, max_yaw))
        pitch = d.normal(2.5) * knobs["max_pitch"] * 0.4
    p["yaw"], p["pitch"] = (yaw * deg).astype(np.float32), (pitch * deg).astype(np.float32)
    p["roll"] = (d.normal(2.5) * knobs["max_roll"] * 0.4 * deg).astype(np.float32)
    p["scale"], p["tx"], p["ty"] = d.uniform(0.94, 1.06), d.normal() * 1.5, d.normal() * 1.5
    # Expression.
    p["mouth_open"] = np.where(d.uniform() < 0.3, d.uniform(0.5, 7), 0).astype(np.float32)
    p["smile"] = d.normal() * 0.6
    blink = d.uniform() < 0.1
    p["eye_close"] = np.minimum(np.where(blink, d.uniform(0.6, 1.0), d.uniform(0, 0.35)), 0.97).astype(np.float32)
    p["brow_raise"] = d.uniform(-1, 2.5)
    p["gaze_u"], p["gaze_v"] = d.uniform(-1.6, 1.6), d.uniform(-0.6, 0.6)
    # Illumination: directional light (strength ``lighting``) and camera colour (``colour_jitter``).
    L, C = knobs["lighting"], knobs["colour_jitter"]
    az, el = d.uniform(-75, 75) * deg, d.uniform(-20, 50) * deg
    p["light"] = np.stack([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)], 1).astype(np.float32)
    p["kd"] = d.uniform(0.2, 0.8) * min(L, 1.25)
    temp, tint = d.uniform(-1, 1) * C, d.normal() * 0.03 * C
    channel = np.stack([1 + 0.13 * temp + tint, 1 - 0.01 * temp - tint, 1 - 0.15 * temp + 0.5 * tint], 1)
    p["gain"] = ((1 + d.uniform(-0.35, 0.2) * C)[:, None] * channel).astype(np.float32)
    p["contrast"] = 1 + d.uniform(-0.3, 0.25) * C
    gray = d.uniform() < 0.05 * min(C, 1)
    p["saturation"] = np.where(gray, 0, 1 + d.uniform(-0.35, 0.25) * C).astype(np.float32)
    # Background, clothing.
    grey1, grey2 = d.uniform(0.1, 0.9), d.uniform(0.1, 0.9)  # muted: half grey, half random colour
    p["bg1"] = 0.5 * grey1[:, None] + 0.5 * _col(d, 0.05, 0.95)
    p["bg2"] = 0.5 * grey2[:, None] + 0.5 * _col(d, 0.05, 0.95)
    p["bg_angle"], p["bg_tex"] = d.uniform(0, 2 * np.pi), d.uniform(0, 0.35)
    p["bg_tile"] = (d.uniform() * 16).astype(np.int64)
    p["clothes"] = _col(d, 0.05, 0.9)
    # Degradations.
    p["blur"] = np.where(d.uniform() < 0.5, d.uniform(0, 1) ** 1.5 * 2.0 * knobs["blur"], 0).astype(np.float32)
    p["noise_sd"] = (d.uniform() ** 2 * 0.04 * knobs["noise"]).astype(np.float32)
    p["noise_tile"] = (d.uniform() * 32).astype(np.int64)
    # Occlusion: 0 none, 1 sunglasses, 2 face mask, 3 hat, 4 hand, 5 patch.
    occluded = d.uniform() < knobs["occlusion_prob"]
    p["occluder"] = np.where(occluded, 1 + d.choice([0.22, 0.22, 0.16, 0.2, 0.2]), 0)
    p["occ_col"], p["occ_col2"] = _col(d, 0.02, 0.95), _col(d, 0.02, 0.95)
    p["occ_x"], p["occ_y"] = d.uniform(22, 90), d.uniform(30, 100)
    p["occ_w"], p["occ_h"], p["occ_angle"] = d.uniform(10, 26), d.uniform(10, 26), d.uniform(-1.2, 1.2)
    p["occ_level"] = d.uniform(0, 1)
    p["hand_tone"] = d.uniform(0, 1)
    assert all(len(np.atleast_1d(v)) == n for v in p.values())
    return p
