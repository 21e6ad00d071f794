"""``faceunlearn figures RUN_DIR [RUN_DIR...]``: curves and t-SNE figures of finished runs (``faceunlearn.figures``).

A run folder is a fit's ``trainer.log_dir`` (``lightning_logs/<name>/version_N``): it holds
``history.csv``, ``embeddings/step<N>.pt`` and/or TensorBoard event files. A folder that is not
one is searched for run folders below it (e.g. ``lightning_logs`` or a sweep's output folder).
``--tsne BEFORE.pt AFTER.pt --out FILE.png`` draws the t-SNE figure of two snapshot files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="faceunlearn figures",
        description="Write figures/curves.png (loss and metrics over steps) and figures/tsne.png (t-SNE of the "
                    "snapshot subsets before and after unlearning) into each run folder: a fit's log dir, holding "
                    "history.csv, embeddings/step<N>.pt and/or TensorBoard events. A folder that is not one is "
                    "searched for run folders below it (e.g. lightning_logs, or a sweep's output folder).",
    )
    parser.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR", help="run folders, or folders to search for them")
    parser.add_argument("--max-identities", type=int, default=10, help="identities drawn per retain subset in the t-SNE (default 10; D_f is shown whole)")
    parser.add_argument("--tsne", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="two snapshot files (embeddings/step<N>.pt) to draw")
    parser.add_argument("--out", type=Path, help="output PNG of --tsne (default tsne.png)")
    args = parser.parse_args(argv)
    if not args.run_dirs and not args.tsne:
        parser.error("give RUN_DIR(s) or --tsne BEFORE AFTER")

    from faceunlearn.io import run_folder
    from faceunlearn.figures import figures_for_run
    from faceunlearn.figures.tsne import save_figure, tsne_figure

    if args.tsne:
        before, after = args.tsne
        for path in args.tsne:
            if not path.is_file():
                sys.exit(f"faceunlearn figures: error: no snapshot file {path}")
        out = save_figure(tsne_figure(before, after, max_identities=args.max_identities), args.out or Path("tsne.png"))
        print(f"wrote {out}")
    for root in args.run_dirs:
        if not root.exists():
            sys.exit(f"faceunlearn figures: error: {root} does not exist")
        runs = run_folder.find_run_dirs(root)
        if not runs:
            sys.exit(f"faceunlearn figures: error: no run folder (history.csv, embeddings/ or TensorBoard events) in {root}")
        for run in runs:
            written = figures_for_run(run, max_identities=args.max_identities)
            print(f"{run}: " + (", ".join(path.name for path in written) if written else "nothing to draw") + (f" in {run / run_folder.FIGURES}" if written else ""))


if __name__ == "__main__":
    main()
