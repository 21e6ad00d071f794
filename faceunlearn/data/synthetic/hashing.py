"""Counter-based hashing: every random number of the renderer is a pure function of integer keys.

``hash_keys`` chains splitmix64 over ``(seed, identity, image key, view, ...)``; ``Draws`` turns one
hash per row into a stream of independent uniforms / normals / categorical draws (one column per
call), so a row's parameters never depend on the other rows of the batch. ``IdentityDraws`` mixes
an identity stream with a smaller per-image stream (the ``identity_jitter`` redraw).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# Stream ids keep the hash streams apart: identity parameters, image parameters, per-seed tables.
STREAM_IDENTITY, STREAM_IMAGE, STREAM_TABLE = 0x1D, 0x1A6E, 0x7AB1E


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def hash_keys(*keys) -> np.ndarray:
    """Chain-hash integer keys (scalars or broadcastable arrays) into one uint64 per element."""
    h = splitmix64(np.uint64(0x5EED))
    for key in keys:
        k = np.asarray(key).astype(np.int64).astype(np.uint64)
        h = splitmix64(h ^ k)
    return np.atleast_1d(h)


class Draws:
    """Independent uniforms for each row of hashes; each call takes the next column."""

    def __init__(self, h: np.ndarray, columns: int):
        with np.errstate(over="ignore"):
            counters = h[:, None] + np.arange(1, columns + 1, dtype=np.uint64)[None, :] * _GOLDEN
        self.u = (splitmix64(counters) >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
        self.next = 0

    def uniform(self, lo=0.0, hi=1.0) -> np.ndarray:
        if self.next >= self.u.shape[1]:
            raise RuntimeError("synthetic generator: ran out of hash columns")
        col = self.u[:, self.next]
        self.next += 1
        return (lo + (hi - lo) * col).astype(np.float32)

    def normal(self, clip=2.5) -> np.ndarray:
        """A standard normal (Box–Muller on two columns), clipped to ±clip."""
        u1, u2 = self.uniform(), self.uniform()
        z = np.sqrt(-2.0 * np.log1p(-u1 * np.float32(0.999999))) * np.cos(np.float32(2 * np.pi) * u2)
        return np.clip(z, -clip, clip)

    def choice(self, probs) -> np.ndarray:
        cum = np.cumsum(np.asarray(probs, dtype=np.float64))
        return np.minimum(np.searchsorted(cum / cum[-1], self.uniform(), side="right"), len(cum) - 1)


class IdentityDraws:
    """Identity parameters ``mean + sd·(spread·z_identity + jitter·z_image)``."""

    def __init__(self, ident: Draws, image: Draws, spread: float, jitter: float):
        self.ident, self.image, self.spread, self.jitter = ident, image, spread, jitter

    def g(self, mean, sd, lo=None, hi=None) -> np.ndarray:
        value = mean + sd * (self.spread * self.ident.normal() + self.jitter * self.image.normal())
        return np.clip(value, lo, hi).astype(np.float32) if (lo is not None or hi is not None) else value
