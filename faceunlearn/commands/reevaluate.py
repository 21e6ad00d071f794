"""``faceunlearn reevaluate``: a sweep's finished runs, evaluated again (``faceunlearn.experiments.reevaluate``)."""

from __future__ import annotations

import argparse
import shlex

from faceunlearn.experiments import reevaluate as library


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn reevaluate", description=library.__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=library.__doc__.split("\n", 1)[1])
    parser.add_argument("old", metavar="OLD_SWEEP", help="a sweep's --out folder (only read)")
    parser.add_argument("--out", required=True, help="folder for the re-evaluated runs")
    parser.add_argument("--override", default="", help="LightningCLI arguments for every evaluation, one quoted string")
    args = parser.parse_args(argv)
    library.reevaluate(args.old, args.out, shlex.split(args.override))


if __name__ == "__main__":
    main()
