"""`python -m chaos --orders 300 --seconds 120 --seed 1`: exits 1 on any problem found."""

from __future__ import annotations

import sys

from chaos.config import parse_args
from chaos.run import run


def main() -> None:
    sys.exit(0 if run(parse_args()) else 1)


if __name__ == "__main__":
    main()
