"""Rendering speed of the built-in synthetic faces on ONE CPU core.

    .venv/bin/python benchmarks/synthetic_faces.py [--images 4096] [--preview docs/synthetic_faces.png]

Prints images/s for each view with torch and NumPy restricted to one thread. ``--preview``
also writes the preview grid (rows = identities; columns = 2 frontal, 2 profile, 2 any-pose and
2 occluded images).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy / torch load their thread pools

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from faceunlearn.data.synthetic import SyntheticFaceGenerator, save_preview  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096, help="images rendered per view")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preview", default=None, help="also write the preview PNG here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = SyntheticFaceGenerator(args.seed)
    n = args.images
    identities = np.arange(n) // 16
    keys = np.arange(n) % 16
    gen.render(identities[:128], keys[:128])  # warm-up
    print(f"synthetic faces, 1 thread, {n} images per view, render_size={gen.knobs['render_size']}")
    for view in ("any", "frontal", "profile"):
        start = time.perf_counter()
        images = gen.render(identities, keys + 1000, view)
        elapsed = time.perf_counter() - start
        assert images.shape == (n, 112, 112, 3)
        print(f"  view={view:8s} {n / elapsed:8.0f} images/s  ({elapsed:.2f} s)")
    if args.preview:
        path = save_preview(args.preview, seed=args.seed)
        print(f"preview written to {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
