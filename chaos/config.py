"""What a chaos run does, from the command line (`make chaos` passes its knobs through)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Database = Literal["postgresql", "sqlite"]


@dataclass(frozen=True)
class ChaosConfig:
    orders: int = 300
    seconds: float = 120.0  # the faulty phase: orders start and processes die during it
    seed: int = 1
    database: Database = "postgresql"
    concurrency: int = 24  # orders in flight at once, at most
    workers: int = 1  # worker processes; with more than one, one is paused now and then
    kill_every_s: tuple[float, float] = (6.0, 14.0)  # a kill every so often (drawn)
    kills: bool = True
    drain_seconds: float = 180.0  # after the faults stop, how long orders may take to settle
    summary_path: Path = Path("var/chaos/summary.json")
    work_dir: Path | None = None  # logs and databases; var/chaos/run-<seed>-<time> if None


def parse_args(argv: list[str] | None = None) -> ChaosConfig:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--orders", type=int, default=ChaosConfig.orders)
    parser.add_argument("--seconds", type=float, default=ChaosConfig.seconds)
    parser.add_argument("--seed", type=int, default=ChaosConfig.seed)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--concurrency", type=int, default=ChaosConfig.concurrency)
    parser.add_argument("--workers", type=int, default=ChaosConfig.workers)
    parser.add_argument("--no-kills", action="store_true", help="faults at the channel only")
    parser.add_argument("--drain-seconds", type=float, default=ChaosConfig.drain_seconds)
    parser.add_argument("--summary", type=Path, default=ChaosConfig.summary_path)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.orders < 1 or args.seconds <= 0 or args.concurrency < 1 or args.workers < 1:
        parser.error("--orders, --seconds, --concurrency and --workers must be positive")
    return ChaosConfig(
        orders=args.orders,
        seconds=args.seconds,
        seed=args.seed,
        database=args.database,
        concurrency=args.concurrency,
        workers=args.workers,
        kills=not args.no_kills,
        drain_seconds=args.drain_seconds,
        summary_path=args.summary,
        work_dir=args.work_dir,
    )
