"""Pure arithmetic of the bench: percentiles, CPU from /proc, goals and the table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CLOCK_TICKS = 100  # os.sysconf("SC_CLK_TCK") on every Linux we run on


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0 < fraction <= 1); 0.0 of nothing."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def cpu_ticks(stat_line: str) -> int:
    """utime + stime (clock ticks) from a /proc/<pid>/stat line. The command name (field 2)
    may hold spaces and parentheses: the fields after it start at the last ')'."""
    after_name = stat_line[stat_line.rindex(")") + 2 :].split()
    return int(after_name[11]) + int(after_name[12])  # fields 14 and 15 of the line


def ms_per_item(ticks: int, items: int) -> float:
    return ticks * 1000 / CLOCK_TICKS / items if items else 0.0


@dataclass(frozen=True)
class Goal:
    """A figure's goal: `value <op> target`."""

    op: str  # "<", "<=", ">=", "=="
    target: float

    def met(self, value: float) -> bool:
        if self.op == "<":
            return value < self.target
        if self.op == "<=":
            return value <= self.target
        if self.op == ">=":
            return value >= self.target
        return value == self.target

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


@dataclass(frozen=True)
class Row:
    name: str
    value: float | None  # None: not measured in this run
    unit: str = ""
    goal: Goal | None = None

    def verdict(self) -> str:
        if self.goal is None or self.value is None:
            return ""
        return "ok" if self.goal.met(self.value) else "MISSED"


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table: figure, value, goal, verdict (a Markdown table, too)."""
    lines = ["| figure | value | goal | |", "| --- | ---: | --- | --- |"]
    for row in rows:
        value = "n/a" if row.value is None else f"{row.value:,.{_digits(row.value)}f} {row.unit}"
        goal = str(row.goal) if row.goal else ""
        lines.append(f"| {row.name} | {value.strip()} | {goal} | {row.verdict()} |")
    return "\n".join(lines)


def _digits(value: float) -> int:
    return 0 if abs(value) >= 100 or value == int(value) else 2
