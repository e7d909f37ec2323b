"""Discrepancies planted in a channel's bill for one day, so tests can see reconciliation find them.

    unknown_payment   a payment we never heard of (a made-up reference, amount, fee)
    missing_payment   one of our payments left out
    missing_refund    one of our refunds left out
    amount_changed    a line's amount is `amount` instead of what was paid or refunded
    fee_changed       a line's fee is `fee` instead of the contract's
    paid_there        a payment the channel's records have closed (or pending) billed as paid
    duplicate_line    a line given twice
    not_ready         the day's bill is held back: the channel's "not ready" answer
    corrupt_file      the file does not match what the channel says of it (WeChat Pay's
                      hash_value, Alipay's zip, the card gateway's file size)

Each plant is kept with what it did (`PlantedDiscrepancy`: the line it touched, the
amount or fee the bill now states and what the records had), so a test asserts that
exactly it is found. Plants live in memory, per (channel, day), until cleared.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, replace
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from channels.base import ChannelName
from sandbox.bill_entries import BillEntry, EntryKind


class DiscrepancyKind(enum.StrEnum):
    UNKNOWN_PAYMENT = "unknown_payment"
    MISSING_PAYMENT = "missing_payment"
    MISSING_REFUND = "missing_refund"
    AMOUNT_CHANGED = "amount_changed"
    FEE_CHANGED = "fee_changed"
    PAID_THERE = "paid_there"
    DUPLICATE_LINE = "duplicate_line"
    NOT_READY = "not_ready"
    CORRUPT_FILE = "corrupt_file"


# The plants that touch one existing line, and which kind of line each may touch.
TARGETED: dict[DiscrepancyKind, frozenset[EntryKind]] = {
    DiscrepancyKind.MISSING_PAYMENT: frozenset({"payment"}),
    DiscrepancyKind.MISSING_REFUND: frozenset({"refund"}),
    DiscrepancyKind.AMOUNT_CHANGED: frozenset({"payment", "refund"}),
    DiscrepancyKind.FEE_CHANGED: frozenset({"payment", "refund"}),
    DiscrepancyKind.DUPLICATE_LINE: frozenset({"payment", "refund"}),
}


class PlantRequest(BaseModel):
    """What a test asks for. `reference` names the line (a payment's out_trade_no, a
    refund's id) for the targeted kinds and paid_there; `line` says which kind of line
    when a reference could be both; `amount` / `fee` are the new values."""

    model_config = ConfigDict(extra="forbid")

    kind: DiscrepancyKind
    reference: str | None = Field(default=None, min_length=1, max_length=64)
    line: EntryKind | None = None
    amount: int | None = Field(default=None, gt=0, le=10**12)
    fee: int | None = Field(default=None, ge=0, le=10**12)


class PlantedDiscrepancy(BaseModel):
    """A plant as it stands in the bill."""

    model_config = ConfigDict(frozen=True)

    id: str
    channel: ChannelName
    day: date
    kind: DiscrepancyKind
    line: EntryKind | None = None  # the kind of line it touches or adds
    reference: str | None = None  # that line's reference (unknown_payment: the made-up one)
    channel_id: str | None = None  # the channel's transaction id on that line
    amount: int | None = None  # the amount the bill states for the line
    fee: int | None = None  # the fee the bill states for the line
    recorded_amount: int | None = None  # what the channel's records have (changed lines)
    recorded_fee: int | None = None


@dataclass(frozen=True)
class _Plant:
    discrepancy: PlantedDiscrepancy
    added: BillEntry | None = None  # the line it adds (unknown_payment, paid_there)


def new_plant_id() -> str:
    return f"bd_{secrets.token_hex(8)}"


class BillPlants:
    """The planted discrepancies of every (channel, day), in the order planted."""

    def __init__(self) -> None:
        self._plants: dict[tuple[ChannelName, date], list[_Plant]] = {}

    def add(self, discrepancy: PlantedDiscrepancy, added: BillEntry | None = None) -> None:
        key = (discrepancy.channel, discrepancy.day)
        self._plants.setdefault(key, []).append(_Plant(discrepancy, added))

    def listed(self, channel: ChannelName, day: date) -> list[PlantedDiscrepancy]:
        return [p.discrepancy for p in self._plants.get((channel, day), [])]

    def clear(self, channel: ChannelName, day: date) -> None:
        self._plants.pop((channel, day), None)

    def holds_back(self, channel: ChannelName, day: date) -> bool:
        return self._has(channel, day, DiscrepancyKind.NOT_READY)

    def corrupts(self, channel: ChannelName, day: date) -> bool:
        return self._has(channel, day, DiscrepancyKind.CORRUPT_FILE)

    def apply(self, channel: ChannelName, day: date, entries: list[BillEntry]) -> list[BillEntry]:
        """The lines as billed: each plant, in the order planted, changes what came before."""
        billed = list(entries)
        for plant in self._plants.get((channel, day), []):
            billed = _apply(plant, billed)
        return sorted(billed, key=lambda entry: entry.at)

    def _has(self, channel: ChannelName, day: date, kind: DiscrepancyKind) -> bool:
        return any(p.discrepancy.kind == kind for p in self._plants.get((channel, day), []))


def _apply(plant: _Plant, entries: list[BillEntry]) -> list[BillEntry]:
    d = plant.discrepancy
    if plant.added is not None:
        return [*entries, plant.added]
    if d.kind not in TARGETED:
        return entries  # not_ready, corrupt_file: the file's matter, not its lines
    out: list[BillEntry] = []
    done = False
    for entry in entries:
        if done or (entry.kind, entry.reference) != (d.line, d.reference):
            out.append(entry)
            continue
        done = True  # one line only: a duplicate planted before stays
        if d.kind == DiscrepancyKind.AMOUNT_CHANGED and d.amount is not None:
            out.append(replace(entry, amount=d.amount))
        elif d.kind == DiscrepancyKind.FEE_CHANGED and d.fee is not None:
            out.append(replace(entry, fee=d.fee))
        elif d.kind == DiscrepancyKind.DUPLICATE_LINE:
            out += [entry, entry]
    return out
