"""`python -m chaos --orders 300 --seconds 120 --seed 1`: exits 1 on any problem found."""

from __future__ import annotations

import sys

import stack
from chaos.config import parse_args
from chaos.run import run


def main() -> None:
    stack.stop_on_sigterm()
    try:
        passed = run(parse_args())
    except KeyboardInterrupt:  # its system stopped on the way out
        sys.exit("chaos: stopped")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
