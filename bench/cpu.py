"""CPU time of processes from /proc: utime + stime of a process and its descendants."""

from __future__ import annotations

from pathlib import Path

from bench.figures import cpu_ticks


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_ticks(pid: int) -> int:
    """Ticks used so far by `pid` and every live descendant (0 for one that is gone)."""
    total = 0
    for each in [pid, *_children(pid)]:
        try:
            total += cpu_ticks(Path(f"/proc/{each}/stat").read_text())
        except OSError:
            continue
    return total


def sample(pids: dict[str, int]) -> dict[str, int]:
    return {name: tree_ticks(pid) for name, pid in pids.items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after}
