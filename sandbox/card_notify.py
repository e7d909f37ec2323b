"""How the card gateway sends webhooks: the core's event as the gateway's `Event`
(`payment_intent.succeeded`, `payment_intent.payment_failed`, `refund.updated`),
signed `Card-Signature: t=<unix>,v1=<HMAC-SHA256>` (`channels.signature`) afresh on
every attempt, retried after 1 minute and then doubling, 12 times (about three
days, as Stripe does), until any 2xx."""

from __future__ import annotations

import time
from collections.abc import Callable

from channels.card.wire import SIGNATURE_HEADER
from channels.signature import sign
from sandbox.card_memory import CardMemory
from sandbox.card_views import event as card_event
from sandbox.notifier import AnyEvent, WireMessage, doubling_delays
from sandbox.protocol import Event


def unix_now() -> int:
    return int(time.time())


class CardNotifications:
    name = "card"
    retry_delays = doubling_delays(60, 12)
    event_types = frozenset(
        {"payment.succeeded", "payment.declined", "refund.succeeded", "refund.failed"}
    )

    def __init__(
        self,
        secret: bytes,
        base_url: str,
        memory: CardMemory,
        clock: Callable[[], int] = unix_now,
    ) -> None:
        self._secret = secret
        self._base_url = base_url
        self._memory = memory
        self._clock = clock

    def render(self, event: AnyEvent) -> WireMessage:
        if not isinstance(event, Event):
            raise TypeError(f"the card gateway sends no {event.type} events")
        body = card_event(event, self._base_url, self._memory).model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, self._clock()),
        }
        return WireMessage(body, headers)

    def accepted(self, status_code: int, body: bytes) -> bool:
        return 200 <= status_code < 300
