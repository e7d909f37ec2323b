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
            pool = stand.pool
            say(f"{database}: each process keeps {pool.size} connections, {pool.overflow} more")
            try:
                stand.start()
                results = asyncio.run(Load(stand, config, say).run())
            finally:
                stand.stop()
            results["database_pool"] = pool.model_dump()
        data["databases"][database] = results
        rows += database_rows(database, results)
        write_json(out, data)
    at_scale = (
        ("settlement", config.settlement_orders, settlement_case),
        ("reconciliation", config.reconciliation_rows, reconciliation_case),
    )
    for name, wanted, case in at_scale:
        if not wanted:
            continue
        data[name] = {}
        for database in config.databases:
            say(f"{database}: {name} at scale")
            work = Path("var/bench") / f"run-{stamp}" / f"{database}-{name}"
            work.mkdir(parents=True, exist_ok=True)
            figures, case_rows = case(database, work, config, say)
            data[name][database] = figures
            rows += case_rows
            write_json(out, data)
    data["table"] = render(rows)
    write_json(out, data)
    print(data["table"], flush=True)
    say(f"written {out}")
    return out
