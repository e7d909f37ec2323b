"""How the sandbox bank sends payout notifications: our JSON event, signed
`Paysaga-Signature: t=..,v1=..` (`channels.signature`), retried after 1 minute,
then doubling, for about three days, until a 2xx."""

from __future__ import annotations

import time

from channels.signature import SIGNATURE_HEADER, sign
from sandbox.notifier import AnyEvent, WireMessage, doubling_delays


class BankNotifications:
    name = "bank"
    retry_delays = doubling_delays(60, 12)
    event_types = frozenset({"payout.paid", "payout.failed"})

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def render(self, event: AnyEvent) -> WireMessage:
        body = event.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
        }
        return WireMessage(body, headers)

    def accepted(self, status_code: int, body: bytes) -> bool:
        return 200 <= status_code < 300
