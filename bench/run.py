"""The whole bench: each database in turn (its own stack), then settlement and reconciliation
at scale on each."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.figures import Row
from bench.load import Load
from bench.reconciliation import reconciliation_case
from bench.report import database_rows, render, write_json
from bench.settlement import settlement_case
from bench.stand import Stand, bench_database


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def run(config: BenchConfig) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = Path("var/bench") / f"{stamp}.json"
    data: dict[str, Any] = {"config": config.__dict__, "databases": {}}
    rows: list[Row] = []
    for database in config.databases:
        work = Path("var/bench") / f"run-{stamp}" / database
        work.mkdir(parents=True, exist_ok=True)
        say(f"{database}: starting the stack (logs in {work})")
        with bench_database(database, work, config.postgres_url) as url:
            stand = Stand(work, url)
            try:
                stand.start()
                results = asyncio.run(Load(stand, config, say).run())
            finally:
                stand.stop()
        data["databases"][database] = results
        rows += database_rows(database, results)
        write_json(out, data)
    if config.settlement_orders:
        data["settlement"] = {}
        for database in config.databases:
            say(f"{database}: settlement at scale")
            work = Path("var/bench") / f"run-{stamp}" / f"{database}-settlement"
            work.mkdir(parents=True, exist_ok=True)
            figures, settlement_rows = settlement_case(database, work, config, say)
            data["settlement"][database] = figures
            rows += settlement_rows
            write_json(out, data)
    if config.reconciliation_rows:
        data["reconciliation"] = {}
        for database in config.databases:
            say(f"{database}: reconciliation at scale")
            work = Path("var/bench") / f"run-{stamp}" / f"{database}-reconciliation"
            work.mkdir(parents=True, exist_ok=True)
            figures, reconciliation_rows = reconciliation_case(database, work, config, say)
            data["reconciliation"][database] = figures
            rows += reconciliation_rows
            write_json(out, data)
    data["table"] = render(rows)
    write_json(out, data)
    print(data["table"], flush=True)
    say(f"written {out}")
    return out
