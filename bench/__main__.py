"""`python -m bench` (`make bench`): knobs BENCH_ORDERS, BENCH_ROUNDS, BENCH_DATABASES,
BENCH_SETTLEMENT_SCALE ("100000/1000", "full", or "0" to skip settlement)."""

from __future__ import annotations

from bench.config import from_env
from bench.run import run


def main() -> None:
    run(from_env())


if __name__ == "__main__":
    main()
