"""``faceunlearn purge DIR``: remove the forget identities' embeddings from a run or sweep folder (``faceunlearn.purge``)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn purge", description=__doc__.splitlines()[0],
                                     epilog="what counts as forget-set data: faceunlearn.purge's docstring")
    parser.add_argument("root", help="a run folder, or a folder of runs (a sweep)")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    parser.add_argument("--pack", default=None, help="also blank these identities' crops in this packed dataset")
    parser.add_argument("--identities", type=int, nargs="+", default=None, help="with --pack: the identity ids to blank")
    args = parser.parse_args(argv)
    if (args.pack is None) != (args.identities is None):
        parser.error("--pack and --identities go together")
    from faceunlearn import purge as library

    done = library.purge(args.root, dry_run=args.dry_run)
    for line in done:
        print(f"[purge] {line}")
    if not done:
        print(f"[purge] no forget-set data found under {args.root}")
    if args.pack is not None and not args.dry_run:
        print(f"[purge] {library.purge_pack(args.pack, args.identities)}")


if __name__ == "__main__":
    main()
