"""``faceunlearn purge DIR``: remove the forget identities' embeddings from a run or sweep folder (``faceunlearn.audit.purge``);
with ``--checkpoints``, also their CosFace head rows from its checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn purge", description=__doc__.splitlines()[0],
                                     epilog="what counts as forget-set data: faceunlearn.audit.purge's docstring")
    parser.add_argument("root", help="a run folder, or a folder of runs (a sweep)")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    parser.add_argument("--pack", default=None, help="also blank these identities' crops in this packed dataset")
    parser.add_argument("--checkpoints", action="store_true",
                        help="also zero the forget identities' CosFace head rows in every *.ckpt under ROOT (or ROOT itself, "
                             "a .ckpt) and drop their optimiser state: purged checkpoints evaluate and export but no longer resume")
    parser.add_argument("--identities", type=int, nargs="+", default=None,
                        help="with --pack: the identity ids to blank; with --checkpoints: the forget identities of "
                             "checkpoints that record none (older ones outside a sweep)")
    args = parser.parse_args(argv)
    if args.identities is not None and args.pack is None and not args.checkpoints:
        parser.error("--identities goes with --pack or --checkpoints")
    if args.pack is not None and args.identities is None:
        parser.error("--pack needs --identities")
    if not Path(args.root).exists():
        parser.error(f"{args.root} does not exist")
    from faceunlearn.audit import purge as library

    # the checkpoints are checked (and, unless a dry run, purged) first: a checkpoint that cannot be purged stops
    # the command before anything else changes
    purged = library.purge_checkpoints(args.root, args.identities, dry_run=args.dry_run) if args.checkpoints else []
    done = purged + (library.purge(args.root, dry_run=args.dry_run) if Path(args.root).is_dir() else [])
    for line in done:
        print(f"[purge] {line}")
    if not done:
        print(f"[purge] no forget-set data found under {args.root}")
    if args.pack is not None and not args.dry_run:
        print(f"[purge] {library.purge_pack(args.pack, args.identities)}")


if __name__ == "__main__":
    main()
