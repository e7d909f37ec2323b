"""`python -m bench` (`make bench`): knobs BENCH_ORDERS, BENCH_ROUNDS, BENCH_DATABASES,
BENCH_SETTLEMENT_SCALE ("full": 1,000,000 orders of 10,000 merchants, the default; "100000/1000";
or "0" to skip settlement), BENCH_RECONCILIATION_SCALE ("full": a bill of 1,000,000 lines against
1,000,000 of our rows, the default; "small": 20,000; a number; or "0" to skip reconciliation)."""

from __future__ import annotations

import sys

import stack
from bench.config import from_env
from bench.run import run


def main() -> None:
    stack.stop_on_sigterm()
    try:
        run(from_env())
    except KeyboardInterrupt:  # its stands stopped their stacks on the way out
        sys.exit("bench: stopped")


if __name__ == "__main__":
    main()
