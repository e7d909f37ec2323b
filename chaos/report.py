"""The run's figures: printed for a reader, written as JSON for a machine."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.checker import KINDS, Problems

EXAMPLES = 5  # problems quoted per kind; the JSON has them all


@dataclass
class Figures:
    orders: int = 0
    seed: int = 0
    database: str = ""
    duration_s: float = 0.0
    drain_s: float = 0.0
    scenarios: dict[str, int] = field(default_factory=dict)
    final_statuses: dict[str, int] = field(default_factory=dict)
    kills: Counter[str] = field(
        default_factory=Counter
    )  # by process, SIGKILL (postgres: immediate)
    died_on_their_own: dict[str, int] = field(default_factory=dict)
    faults: Counter[str] = field(
        default_factory=Counter
    )  # injected at the sandbox and by the client
    client_retries: dict[str, int] = field(default_factory=dict)  # by cause
    server_errors: list[str] = field(default_factory=list)  # 5xx answers, as evidence
    workflows: dict[str, int] = field(default_factory=dict)  # by type and status

    def as_dict(self, problems: Problems) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "seed": self.seed,
            "database": self.database,
            "duration_s": round(self.duration_s, 1),
            "drain_s": round(self.drain_s, 1),
            "scenarios": self.scenarios,
            "final_statuses": self.final_statuses,
            "kills": dict(self.kills),
            "died_on_their_own": self.died_on_their_own,
            "faults_injected": dict(sorted(self.faults.items())),
            "client_retries": self.client_retries,
            "server_errors": len(self.server_errors),
            "server_error_examples": self.server_errors[:20],
            "workflows": self.workflows,
            "problems": {kind: len(problems[kind]) for kind in KINDS},
            "problem_details": problems,
            "ok": passed(problems),
        }


def passed(problems: Problems) -> bool:
    """Gave-ups count too: an order whose outcome the client never learnt is not proven."""
    return not any(problems[kind] for kind in KINDS)


def render(figures: Figures, problems: Problems) -> str:
    lines = [
        f"chaos run: {figures.orders} orders, seed {figures.seed}, {figures.database}, "
        f"{figures.duration_s:.0f} s (drain {figures.drain_s:.0f} s)",
        f"  scenarios        {_pairs(figures.scenarios)}",
        f"  final statuses   {_pairs(figures.final_statuses)}",
        f"  kills            {_pairs(figures.kills)} (total {sum(figures.kills.values())})",
        f"  died by itself   {_pairs(figures.died_on_their_own) or 'none'}",
        f"  faults injected  {_pairs(figures.faults)} (total {sum(figures.faults.values())})",
        f"  client retries   {_pairs(figures.client_retries) or 'none'}",
        f"  5xx answers      {len(figures.server_errors)}",
        f"  workflows        {_pairs(figures.workflows)}",
    ]
    for kind in KINDS:
        found = problems[kind]
        lines.append(f"  {kind:<16} {len(found)}")
        lines += [f"      {line}" for line in found[:EXAMPLES]]
    lines.append("PASSED" if passed(problems) else "FAILED")
    return "\n".join(lines)


def write_summary(path: Path, figures: Figures, problems: Problems) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures.as_dict(problems), indent=2, sort_keys=True) + "\n")


def _pairs(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
