"""The bench's pure parts: percentiles, CPU from /proc lines, goals, the table, the knobs."""

from __future__ import annotations

import pytest

from bench.config import from_env, parse_scale
from bench.figures import Goal, Row, cpu_ticks, ms_per_item, percentile, render_table


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0


def test_cpu_ticks_reads_utime_and_stime_after_a_name_with_spaces() -> None:
    line = "4242 (uvicorn (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
    assert cpu_ticks(line) == 300
    assert ms_per_item(300, 100) == 30.0  # 3 s of CPU over 100 orders


def test_goals_and_the_table() -> None:
    rows = [
        Row("ratio", 0.5, "x", Goal(">=", 0.8)),
        Row("cpu", 40.0, "ms", Goal("<=", 45)),
        Row("events", 0, "", Goal("==", 0)),
        Row("not measured", None),
    ]
    table = render_table(rows)
    assert "| ratio | 0.50 x | >= 0.8 | MISSED |" in table
    assert "| cpu | 40 ms | <= 45 | ok |" in table
    assert "| events | 0 | == 0 | ok |" in table
    assert "| not measured | n/a |  |  |" in table


def test_knobs() -> None:
    assert parse_scale("full") == (1_000_000, 10_000)
    assert parse_scale("100000/1000") == (100_000, 1_000)
    config = from_env({"BENCH_ORDERS": "10", "BENCH_DATABASES": "sqlite"})
    assert (config.orders, config.databases) == (10, ("sqlite",))
    with pytest.raises(ValueError, match="BENCH_DATABASES"):
        from_env({"BENCH_DATABASES": "mysql"})
