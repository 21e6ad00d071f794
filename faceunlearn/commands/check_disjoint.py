"""``faceunlearn check-disjoint``: the forget identities must not reappear under other labels (``faceunlearn.disjoint.check``)."""

from __future__ import annotations

import sys

from faceunlearn.disjoint.arguments import build_parser


def main(argv: list[str] | None = None) -> None:
    """Run the check; raises ``SystemExit`` with status 1 (overlap) or 2 (bad input), returns on success."""
    args = build_parser().parse_args(argv)
    from faceunlearn.disjoint.check import InputError, run

    try:
        status = run(args)
    except InputError as error:
        print(f"faceunlearn check-disjoint: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()
