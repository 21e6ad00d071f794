"""``faceunlearn prepare DATASET --root RAW --out PACKED [options]``: argument parsing and the summary.

``main(argv)`` is what ``faceunlearn prepare ...`` calls with the words after ``prepare``; errors
print one message (no traceback) and exit with status 2, an interruption exits with 130 after
saying how to resume. ``run(argv)`` is the same without the exit handling (used by tests). The
arguments are ``faceunlearn.prepare.arguments``, the job ``faceunlearn.prepare.job``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faceunlearn.prepare.run import Summary


def run(argv: list[str] | None = None) -> Summary:
    """Parse ``argv``, run the job and print its summary; returns the ``Summary`` (``faceunlearn.prepare.job.run``)."""
    from faceunlearn.prepare.job import run

    return run(argv)


def main(argv: list[str] | None = None) -> None:
    from faceunlearn.prepare.errors import PrepareError  # light: no torch

    try:
        run(argv)
    except PrepareError as error:
        print(f"faceunlearn prepare: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
