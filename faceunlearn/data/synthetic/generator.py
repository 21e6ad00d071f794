"""``SyntheticFaceGenerator``: seeded parameters → rasterised, post-processed 112×112 faces."""

from __future__ import annotations

import numpy as np

from faceunlearn.data.packed import IMAGE_SIZE
from faceunlearn.data.synthetic.canvas import Canvas, bcast
from faceunlearn.data.synthetic.draw import draw_background, draw_ears, draw_features, draw_glasses, draw_head, draw_nose
from faceunlearn.data.synthetic.hashing import STREAM_TABLE, Draws, hash_keys
from faceunlearn.data.synthetic.head import EYE_U, EYE_V, Head
from faceunlearn.data.synthetic.occluders import draw_occluders_in_front, draw_occluders_on_face
from faceunlearn.data.synthetic.params import DEFAULT_KNOBS, VIEWS, identity_params, image_params
from faceunlearn.data.synthetic.postprocess import postprocess


def _as_keys(identities, image_keys) -> tuple[np.ndarray, np.ndarray]:
    """Identities and image keys (ints or arrays) broadcast to equal-length int64 arrays."""
    identities, image_keys = np.atleast_1d(np.asarray(identities, np.int64)), np.atleast_1d(np.asarray(image_keys, np.int64))
    return np.broadcast_arrays(identities, image_keys)


class SyntheticFaceGenerator:
    """Seeded, deterministic renderer of aligned 112×112 synthetic faces.

    ``render(identities, image_keys, view)`` returns uint8 [N,112,112,3]; image i is a pure
    function of ``(seed, knobs, identities[i], image_keys[i], view)``. Knobs (defaults in
    ``DEFAULT_KNOBS``): ``identity_spread``, ``identity_jitter``, ``max_yaw``, ``max_pitch``,
    ``max_roll``, ``wide_pose_prob``, ``lighting``, ``colour_jitter``, ``occlusion_prob``, ``noise``, ``blur``,
    ``render_size``.
    """

    batch = 64  # images per rasterisation pass (cache-friendly); does not affect the pixels

    def __init__(self, seed: int = 0, **knobs):
        unknown = set(knobs) - set(DEFAULT_KNOBS)
        if unknown:
            raise TypeError(f"unknown synthetic-face knobs {sorted(unknown)}; known: {sorted(DEFAULT_KNOBS)}")
        self.seed = int(seed)
        self.knobs = {**DEFAULT_KNOBS, **knobs}
        self.knobs["render_size"] = size = int(self.knobs["render_size"])
        # Tables fixed by the seed: 32 render-size noise tiles and 16 smooth texture tiles.
        d = Draws(hash_keys(self.seed, STREAM_TABLE, np.arange(32 * size * size)), 6)
        self.noise = np.stack([d.normal(3.5) for _ in range(3)]).reshape(3, 32, size, size)
        w = Draws(hash_keys(self.seed, STREAM_TABLE + 1, np.arange(16)), 24)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        tiles = np.zeros((16, size, size), np.float32)
        for _ in range(4):
            fx, fy, ph, amp = w.uniform(-4, 4), w.uniform(-4, 4), w.uniform(0, 2 * np.pi), w.uniform(0.2, 1)
            tiles += bcast(amp) * np.sin(2 * np.pi * (bcast(fx) * xx + bcast(fy) * yy) + bcast(ph))
        self.tiles = (tiles / 2.5).astype(np.float32)

    def render(self, identities: np.ndarray, image_keys: np.ndarray, view: str = "any") -> np.ndarray:
        """Render uint8 [N,112,112,3] faces of ``identities`` for ``image_keys`` (ints) in ``view``."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
        identities, image_keys = _as_keys(identities, image_keys)
        out = np.empty((len(identities), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for start in range(0, len(identities), 8 * self.batch):  # parameters for up to 512 at a time
            stop = min(start + 8 * self.batch, len(identities))
            ip, mp = self.params(identities[start:stop], image_keys[start:stop], view)
            for s in range(start, stop, self.batch):
                sl = slice(s - start, min(s + self.batch, stop) - start)
                batch_ip, batch_mp = ({k: v[sl] for k, v in params.items()} for params in (ip, mp))
                out[s : s + sl.stop - sl.start] = self._rasterise(batch_ip, batch_mp)
        return out

    def params(self, identities: np.ndarray, image_keys: np.ndarray, view: str = "any") -> tuple[dict, dict]:
        """The (identity, image) parameter dicts of these images: what ``render`` draws."""
        identities, image_keys = _as_keys(identities, image_keys)
        h = hash_keys(self.seed, identities, image_keys, VIEWS[view])
        return identity_params(self.seed, identities, h, self.knobs), image_params(h, view, self.knobs)

    def landmarks(self, identities: np.ndarray, image_keys: np.ndarray, view: str = "any") -> np.ndarray:
        """[N,5,2] image (x, y) of the eye centres, nose tip and mouth corners (visible or not)."""
        ip, mp = self.params(identities, image_keys, view)
        hd = Head(ip, mp)
        zero = np.zeros_like(ip["A"])
        w_tip = hd.surface(zero, ip["nose_v"])[0]
        points = [
            hd.project(zero - EYE_U, zero + EYE_V),
            hd.project(zero + EYE_U, zero + EYE_V),
            hd.project(zero, ip["nose_v"], w_tip + ip["protr"]),
            hd.project(-ip["mouth_w"], ip["mouth_v"]),
            hd.project(ip["mouth_w"], ip["mouth_v"]),
        ]
        xy = np.stack([np.stack(p[:2], -1) for p in points], 1)  # face space
        shift = np.stack([mp["tx"], mp["ty"]], -1)[:, None, :]
        return (56.0 + (xy - 56.0) * mp["scale"][:, None, None] + shift).astype(np.float32)

    def _rasterise(self, ip: dict, mp: dict) -> np.ndarray:
        """Paint one batch back to front at the render size, then the camera (``postprocess``)."""
        cv = Canvas(len(mp["yaw"]), self.knobs["render_size"], mp)
        hd = Head(ip, mp)
        draw_background(cv, mp, self.tiles)
        draw_head(cv, hd, ip, mp)
        draw_ears(cv, hd, ip, mp)
        draw_features(cv, hd, ip, mp)
        draw_nose(cv, hd, ip, mp)
        sunglasses = mp["occluder"] == 1
        draw_glasses(cv, hd, ip, (ip["glasses"] | sunglasses).astype(np.float32), sunglasses)
        draw_occluders_on_face(cv, hd, ip, mp)
        cv.img *= cv.shade[None]
        draw_occluders_in_front(cv, mp, self.tiles)
        return postprocess(cv, mp, self.noise)
