"""The bench's knobs, from the environment (`make bench` passes them through)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class BenchConfig:
    orders: int = 200  # per paysaga round (and as many bare sagas per floor round)
    rounds: int = 2  # bare, paysaga, bare, paysaga, ...
    databases: tuple[str, ...] = DATABASES
    settlement_orders: int = 1_000_000
    settlement_merchants: int = 10_000
    reconciliation_rows: int = 1_000_000  # our rows (and about as many bill lines)
    in_flight: int = 50
    serial_orders: int = 20  # orders one at a time, for latency at 1 in flight
    duplicates: int = 20  # resends of one notification
    callback_rate: float = 200  # requests/s of the callback storm (duplicates + forgeries)
    callback_seconds: float = 10  # how long it lasts; 0 skips it
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"


def parse_scale(text: str) -> tuple[int, int]:
    """ "100000/1000" -> (orders, merchants); "full" is 1,000,000 orders of 10,000 merchants;
    "0" skips the case."""
    if text == "full":
        return 1_000_000, 10_000
    if text.strip() == "0":
        return 0, 0
    orders, _, merchants = text.partition("/")
    return int(orders), int(merchants)


RECONCILIATION_SIZES = {"full": 1_000_000, "small": 20_000}


def parse_rows(text: str) -> int:
    """Our rows of the reconciliation case: "full" is 1,000,000, "small" 20,000, "0" skips
    it, a number is that many."""
    text = text.strip()
    return RECONCILIATION_SIZES[text] if text in RECONCILIATION_SIZES else int(text)


def from_env(env: dict[str, str] | None = None) -> BenchConfig:
    env = dict(os.environ) if env is None else env
    databases = tuple(d.strip() for d in env.get("BENCH_DATABASES", ",".join(DATABASES)).split(","))
    unknown = set(databases) - set(DATABASES)
    if unknown:
        raise ValueError(f"BENCH_DATABASES: unknown {sorted(unknown)}; choose from {DATABASES}")
    orders, merchants = parse_scale(env.get("BENCH_SETTLEMENT_SCALE", "full"))
    return BenchConfig(
        orders=int(env.get("BENCH_ORDERS", BenchConfig.orders)),
        rounds=int(env.get("BENCH_ROUNDS", BenchConfig.rounds)),
        databases=databases,
        settlement_orders=orders,
        settlement_merchants=merchants,
        reconciliation_rows=parse_rows(env.get("BENCH_RECONCILIATION_SCALE", "full")),
        callback_rate=float(env.get("BENCH_CALLBACK_RATE", BenchConfig.callback_rate)),
        callback_seconds=float(env.get("BENCH_CALLBACK_SECONDS", BenchConfig.callback_seconds)),
        postgres_url=env.get("BENCH_POSTGRES_URL", BenchConfig.postgres_url),
    )
