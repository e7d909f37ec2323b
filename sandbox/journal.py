"""The sandbox's memory on disk: an append-only journal of records, one JSON line each.

A change appends one line (`{"t": kind, "r": record}`), so a write costs the size of
the record, not of the whole history (the old snapshot rewrote everything on every
change). Reading replays the lines: the last line for a key wins, and a line marked
`"gone"` (`Journal.remove`) drops its key. Changes that must not outlive one another (a
payment paid and the notice it owes) share one line (`{"all": [change, ...]}`,
`Journal.append_together`). A line cut short by a crash mid-write is the last one, and is
skipped whole: all of its changes, or none, were made. On open the journal is compacted (one
line per live record, written to a temporary file and swapped in atomically), so it does
not grow without bound across restarts. A snapshot from before the journal (one JSON
object with "payments", "refunds", "payouts") is read as such and compacted into lines.

The file is for this user only (0600), whoever made it first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KINDS = ("payments", "refunds", "payouts", "sweeps", "notices")
Record = dict[str, Any]


def record_key(kind: str, record: Record) -> tuple[str, ...]:
    """What identifies a record of `kind` (a later line with the same key replaces it)."""
    if kind == "payments":
        return (record["channel"], record["out_trade_no"])
    if kind == "refunds":
        return (record["channel"], record["refund_id"])
    if kind == "sweeps":
        return (record["transfer_id"],)
    if kind == "notices":
        return (record["event_id"],)
    return (record["payout_id"],)


def read_state(path: Path) -> dict[str, list[Record]]:
    """The live records of each kind, in the order they were first written."""
    state: dict[str, dict[tuple[str, ...], Record]] = {kind: {} for kind in KINDS}
    if not path.exists():
        return {kind: [] for kind in KINDS}
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) - 1:
                break  # a write cut short by a crash: the change never happened
            raise
        if "all" in entry:
            for change in entry["all"]:
                _apply(state, change)
        elif "t" in entry:
            _apply(state, entry)
        else:  # a snapshot from before the journal
            for kind in KINDS:
                for record in entry.get(kind, []):
                    state[kind][record_key(kind, record)] = record
    return {kind: list(records.values()) for kind, records in state.items()}


def _apply(state: dict[str, dict[tuple[str, ...], Record]], change: Record) -> None:
    key = record_key(change["t"], change["r"])
    if change.get("gone"):
        state[change["t"]].pop(key, None)
    else:
        state[change["t"]][key] = change["r"]


class Journal:
    """Appends records to `path`; opening it compacts what is there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = read_state(path)
        self._compact()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, kind: str, record: Record) -> int:
        """Write one record (one `write`, so a concurrent reader never sees half a line
        but at a crash); the number of bytes written."""
        line = _line(kind, record)
        return os.write(self._fd, line)

    def append_together(self, changes: Sequence[tuple[str, Record]]) -> int:
        """Write records of several kinds in one line (one `write`): read back, all of them
        or, cut short by a crash, none; the number of bytes written."""
        entries = [{"t": kind, "r": record} for kind, record in changes]
        line = json.dumps({"all": entries}, separators=(",", ":")).encode() + b"\n"
        return os.write(self._fd, line)

    def remove(self, kind: str, record: Record) -> int:
        """Write that the record of `kind` with `record`'s key is gone (reading drops it,
        and so does the next compaction); the number of bytes written."""
        return os.write(self._fd, _line(kind, record, gone=True))

    def close(self) -> None:
        os.close(self._fd)

    def _compact(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            for kind, records in self.state.items():
                file.writelines(_line(kind, record) for record in records)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)  # an older file left behind under this name
        os.replace(temporary, self.path)  # atomic: a crash leaves the old or the new file


def _line(kind: str, record: Record, *, gone: bool = False) -> bytes:
    entry = {"t": kind, "r": record, "gone": True} if gone else {"t": kind, "r": record}
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"
