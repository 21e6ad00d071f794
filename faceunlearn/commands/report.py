"""``faceunlearn report``: a sweep's tables and trade-off curves (``faceunlearn.experiments.report``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceunlearn.experiments import report as library
from faceunlearn.experiments.tables import TABLES_BY_NUMBER


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn report", description=library.__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(library.__doc__.splitlines()[1:]))
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's --out folder (every done.json below it is read)")
    parser.add_argument("--out", default=None, help="folder for report.md, report.csv, report.tex (default RUN_DIR/report)")
    parser.add_argument("--tables", nargs="+", choices=sorted(TABLES_BY_NUMBER), default=sorted(TABLES_BY_NUMBER),
                        help="which tables (default: 1 2 3 4)")
    parser.add_argument("--tune", nargs="+", default=[], metavar="TUNE_DIR",
                        help="`faceunlearn tune --out` folders: their trials join the trade-off figure and front table")
    args = parser.parse_args(argv)
    if not Path(args.run_dir).is_dir():
        raise SystemExit(f"report: {args.run_dir!r} is not a folder")
    runs = library.collect(args.run_dir)
    if not runs:
        print(f"report: no finished runs (done.json) under {args.run_dir}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.run_dir) / "report"
    from faceunlearn.experiments.tradeoff import read_study

    studies = [read_study(folder) for folder in args.tune]
    markdown = library.write_report(runs, out, args.run_dir, tuple(TABLES_BY_NUMBER[n] for n in args.tables), studies)
    print(markdown)
    print(f"wrote {out / 'report.md'}, {out / 'report.csv'} and {out / 'report.tex'}")


if __name__ == "__main__":
    main()
