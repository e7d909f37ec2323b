"""The bank-transfer channel the platform pays merchants out through.

A payout is created once per `payout_id` (the bank makes creating it
idempotent), settles later to paid or failed, and the bank says so in a signed
notification, exactly as a payment channel does. The bank also reports what the
payment channels paid into our own account (`incoming_transfers`: a channel's day,
one transfer per currency). Today the bank is the
sandbox's `/bank`: these models are ours, its wire format stays in
`channels.bank_wire`, and the I/O and error mapping are shared with the
payment adapter (`channels._sandbox_http`):

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> PayoutNotFound
    any other 4xx                            -> ChannelRejected(code=<the bank's code>)

Amounts are integers in the currency's minor unit.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict

from channels import bank_wire as wire
from channels._sandbox_http import (
    ACKNOWLEDGEMENT,
    SandboxHttp,
    read_notification,
    segment,
    unix_now,
)
from channels.base import Acknowledgement
from channels.errors import NotificationFormatError, PayoutNotFound
from domain.errors import DomainError
from domain.fx.conversion import convert
from domain.settlement import PayoutCredit, PayoutOutcome


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"  # accepted, not settled yet
    PAID = "paid"  # the money reached the beneficiary's bank
    FAILED = "failed"  # the bank refused for good; failure_reason says why


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PayoutRequest(_Model):
    payout_id: str  # our id; makes creating the payout idempotent
    merchant_id: str
    amount: int
    currency: str
    beneficiary: str  # e.g. a masked account name
    notify_url: str
    credit_currency: str | None = None  # the bank converts into it; None: paid as it is


class PayoutState(_Model):
    payout_id: str
    merchant_id: str
    amount: int
    currency: str
    status: PayoutStatus
    failure_reason: str | None = None  # set once failed
    bank_reference: str | None = None  # set once paid
    credited: PayoutCredit | None = None  # a converted payout: what the merchant gets

    def outcome(self) -> PayoutOutcome:
        """A finished payout as settlement records it (paid or not, and the bank's word)."""
        return PayoutOutcome(
            payout_id=self.payout_id,
            paid=self.status == PayoutStatus.PAID,
            bank_reference=self.bank_reference,
            failure_reason=self.failure_reason,
            credited=self.credited,
        )


class SettledConversion(_Model):
    """The channel paid `source_currency` takings in the transfer's currency at `rate`;
    `orders`: each order's converted day (minor units of the transfer's currency)."""

    source_currency: str
    rate: Decimal
    orders: dict[str, int]


class ChannelTransfer(_Model):
    """A channel's settlement of one day's takings in one currency, credited to our
    account: `gross` taken, `fees` kept (net of fees returned on refunds), `refunds` paid
    back, and `net` (= gross - fees - refunds) received."""

    transfer_id: str
    channel: str
    day: date
    currency: str
    gross: int
    fees: int
    refunds: int
    net: int
    bank_reference: str
    conversion: SettledConversion | None = None  # None: paid in the currency it took

    @property
    def taken_currency(self) -> str:
        """The currency the channel took the money in (what our books booked it in)."""
        return self.currency if self.conversion is None else self.conversion.source_currency


class ChannelTransfers(_Model):
    """A channel's transfers for one day (one per currency; none until it settled)."""

    transfers: list[ChannelTransfer]


class PayoutNotification(_Model):
    """A verified payout notification; `payout.status` says whether it was paid or failed."""

    notification_id: str  # the bank's id for this message (same on every retry)
    payout: PayoutState


_PAYOUT_STATUS: dict[wire.PayoutStatus, PayoutStatus] = {
    "pending": PayoutStatus.PENDING,
    "paid": PayoutStatus.PAID,
    "failed": PayoutStatus.FAILED,
}
_STATUS_OF_EVENT: dict[wire.PayoutEventType, PayoutStatus] = {
    "payout.paid": PayoutStatus.PAID,
    "payout.failed": PayoutStatus.FAILED,
}


class BankTransferAdapter:
    """The bank's payout API. `base_url` already ends in the bank's path (`.../bank`).

    Methods raise `channels.errors.ChannelError` subclasses. The client is
    injected so that its timeout and connection pool are owned by the caller.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        webhook_secret: bytes,
        tolerance_seconds: int,
        client: httpx.AsyncClient,
        clock: Callable[[], int] = unix_now,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = SandboxHttp("bank", base_url, api_key, client, PayoutNotFound)
        self._webhook_secret = webhook_secret
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"BankTransferAdapter(base_url={self._base_url!r})"

    async def create_payout(self, request: PayoutRequest) -> PayoutState:
        """Create the payout, or get back the one already created with this payout_id."""
        # model_construct: the bank validates its own rules and answers 400.
        body = wire.PayoutCreate.model_construct(
            payout_id=request.payout_id,
            merchant_id=request.merchant_id,
            amount=request.amount,
            currency=request.currency,
            beneficiary=request.beneficiary,
            notify_url=request.notify_url,
            credit_currency=request.credit_currency,
        )
        return _payout_state(await self._http.call("POST", "/api/payouts", wire.Payout, body))

    async def query_payout(self, payout_id: str) -> PayoutState:
        path = f"/api/payouts/{segment(payout_id)}"
        return _payout_state(await self._http.call("GET", path, wire.Payout))

    async def incoming_transfers(self, channel: str, day: date) -> ChannelTransfers:
        """What `channel` has paid into our account for its takings of `day`, credited
        (an empty list until it settles the day)."""
        query = urlencode({"channel": channel, "day": day.isoformat()})
        path = f"/api/incoming-transfers?{query}"
        answer = await self._http.call("GET", path, wire.IncomingTransfers)
        credited = [_transfer(t) for t in answer.transfers if t.status == "credited"]
        return ChannelTransfers(transfers=credited)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PayoutNotification:
        """Verify the signature over the raw body, then parse it.

        Raises `NotificationSignatureError` for a bad, missing or stale
        signature and `NotificationFormatError` for a body that cannot be read.
        """
        event = read_notification(
            wire.PayoutEvent,
            headers,
            body,
            secret=self._webhook_secret,
            now=self._clock(),
            tolerance_seconds=self._tolerance_seconds,
            name="bank",
        )
        payout = _payout_state(event.data)
        if payout.status is not _STATUS_OF_EVENT[event.type]:
            # Callers act on `payout.status`; an event that contradicts itself is unreadable.
            raise NotificationFormatError(
                "bank notification type does not match the payout status",
                code="notification_malformed",
            )
        return PayoutNotification(notification_id=event.id, payout=payout)

    def acknowledgement(self) -> Acknowledgement:
        return ACKNOWLEDGEMENT


def _transfer(transfer: wire.IncomingTransfer) -> ChannelTransfer:
    return ChannelTransfer(
        transfer_id=transfer.transfer_id,
        channel=transfer.channel,
        day=date.fromisoformat(transfer.day),
        currency=transfer.currency,
        gross=transfer.gross,
        fees=transfer.fees,
        refunds=transfer.refunds,
        net=transfer.net,
        bank_reference=transfer.bank_reference,
        conversion=None if transfer.conversion is None else _conversion(transfer.conversion),
    )


def _conversion(conversion: wire.TransferConversion) -> SettledConversion:
    return SettledConversion(
        source_currency=conversion.source_currency,
        rate=Decimal(conversion.rate),
        orders=conversion.orders,
    )


def _payout_state(payout: wire.Payout) -> PayoutState:
    return PayoutState(
        payout_id=payout.payout_id,
        merchant_id=payout.merchant_id,
        amount=payout.amount,
        currency=payout.currency,
        status=_PAYOUT_STATUS[payout.status],
        failure_reason=payout.failure_reason,
        bank_reference=payout.bank_reference,
        credited=_credited(payout),
    )


def _credited(payout: wire.Payout) -> PayoutCredit | None:
    """What the bank says it credited, checked: its amount is the payout's at its rate by
    the one rounding rule (`domain.fx.conversion.convert`), or the answer is unreadable."""
    figures = (payout.credit_currency, payout.credited_amount, payout.credit_rate)
    if figures == (None, None, None):
        return None
    currency, amount, rate = figures
    if currency is None or amount is None or rate is None:
        raise _malformed("a converted payout without all of its currency, amount and rate")
    try:
        expected = convert(payout.amount, payout.currency, currency, Decimal(rate))
    except DomainError:
        raise _malformed(f"a payout credited in an unknown currency {currency}") from None
    if expected.target_amount != amount:
        raise _malformed(f"credited {amount} {currency}, not the payout at rate {rate}")
    return PayoutCredit(currency=currency, amount=amount, rate=rate)


def _malformed(message: str) -> NotificationFormatError:
    return NotificationFormatError(f"bank: {message}", code="payout_malformed")
