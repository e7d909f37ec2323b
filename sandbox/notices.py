"""The notifications the sandbox owes, as its store keeps them.

A change that tells the receiver about itself (a payment paid or declined, a refund
made final, a payout settled) owes a notification: `Owed`, decided by the notifier
(faults drawn, or nothing sent at all) and handed to the store with the change, which
writes both in one journal line: a crash keeps the change and its notice or neither, as
a real channel's payment and its notification queue entry are one commit. What the
store keeps across a restart is the `HeldNotice`, until the receiver takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.protocol import Event, PayoutEvent


@dataclass(frozen=True)
class HeldNotice:
    """A notification the notifier still owes: kept until it is taken (or given up on)."""

    event_id: str
    url: str
    protocol: str  # its NotifyProtocol's name: a channel's, or "bank"
    event: dict[str, Any]  # the event as JSON, sent again unchanged (its id too)


@dataclass(frozen=True)
class Owed:
    """A notification a change owes, and how its first sending goes (a test's or a chaos
    run's delay or duplicate); one sent again after a restart goes at once, once."""

    url: str
    event: Event | PayoutEvent
    protocol: str
    delay_s: float = 0.0
    copies: int = 1

    @property
    def notice(self) -> HeldNotice:
        raw = self.event.model_dump(mode="json")
        return HeldNotice(self.event.id, self.url, self.protocol, raw)
