"""Helpers the tests share: waiting on conditions, driving the API and the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from db.engine import read_one_snapshot
from db.reconcile import EVERYTHING, Scope, ledger_problems
from db.tables import JournalEntry, Order, Payout, Posting, Refund
from settings import settings_from_env as settings_from_env  # re-exported: tests import it here

T = TypeVar("T")

# One TLS context for every test client: httpx builds a new one for each client it makes
# (about 20 ms of CPU loading the CA bundle), and every test makes several.
TLS = httpx.create_ssl_context()


def http_client(base_url: str = "", **options: Any) -> httpx.AsyncClient:
    """A client as the tests use them: the shared TLS context, 30 s unless told."""
    return httpx.AsyncClient(base_url=base_url, verify=TLS, **{"timeout": 30, **options})


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    what: str,
    timeout: float = 20.0,
) -> T:
    """Poll `probe` until `accept` holds for its value; fail with the last value seen.

    The interval grows from 20 ms to 100 ms: a state that comes at once is seen at once,
    and a long wait costs a probe (an API call, a query) ten times a second, not fifty.
    """
    deadline = time.monotonic() + timeout
    interval = 0.02
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(interval)  # the poll interval, not a wait for the state
        interval = min(interval * 1.5, 0.1)
        value = await probe()
    return value


async def merchant_payout(engine: Engine, merchant_id: str, status: str | None = "paid") -> Payout:
    """The merchant's payout once it is recorded with `status` (None: any status)."""

    async def probe() -> Payout | None:
        with Session(engine) as session:
            return session.exec(select(Payout).where(Payout.merchant_id == merchant_id)).first()

    def done(payout: Payout | None) -> bool:
        return payout is not None and status in (None, payout.status)

    payout = await wait_for(probe, done, f"the payout of {merchant_id} ({status or 'any'})")
    assert payout is not None
    return payout


@dataclass(frozen=True)
class LedgerMark:
    """Where the books stood when a test began: what it adds is what comes after."""

    posting_id: int
    at: datetime


def ledger_mark(engine: Engine) -> LedgerMark:
    with Session(engine) as session:
        last = session.exec(select(func.max(Posting.id))).one()
    return LedgerMark(posting_id=last or 0, at=datetime.now(UTC))


def assert_ledger_sound(engine: Engine, since: LedgerMark | None = None) -> None:
    """Every entry balances and is non-empty, and every invariant of `db.reconcile` holds.

    With `since`, only what changed after the mark is proved (the entries posted, the
    accounts they moved, the orders and merchants they or the test touched), so the check
    costs what the test did, not what the whole session did; without it, everything.
    """
    new_postings = select(Posting.entry_id).where(
        col(Posting.id) > (since.posting_id if since else -1)
    )
    with Session(engine) as session:
        read_one_snapshot(session)  # sagas may still be committing
        unbalanced = session.exec(
            select(Posting.entry_id, Posting.currency)
            .where(col(Posting.entry_id).in_(new_postings))
            .group_by(col(Posting.entry_id), col(Posting.currency))
            .having(func.sum(Posting.amount) != 0)
        ).all()
        assert unbalanced == [], f"unbalanced ledger entries: {unbalanced}"
        entries = select(JournalEntry.id)
        if since is not None:
            entries = entries.where(col(JournalEntry.created_at) >= since.at)
        empty = session.exec(
            entries.where(col(JournalEntry.id).not_in(select(Posting.entry_id)))
        ).all()
        assert empty == [], f"entries without postings: {empty}"
        scope = EVERYTHING if since is None else _touched_since(session, since)
        problems = ledger_problems(session, scope)
        assert problems == [], f"the books do not reconcile: {problems}"


def _touched_since(session: Session, since: LedgerMark) -> Scope:
    """What a test moved: accounts and entries by posting, orders and merchants by time."""
    new = session.exec(
        select(Posting.account, JournalEntry.order_id, JournalEntry.merchant_id)
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(col(Posting.id) > since.posting_id)
    ).all()
    orders = {order for _, order, _ in new if order} | set(
        session.exec(select(Order.id).where(col(Order.updated_at) >= since.at)).all()
    )
    merchants = {merchant for _, _, merchant in new if merchant} | set(
        session.exec(select(Order.merchant_id).where(col(Order.id).in_(orders))).all()
    )
    return Scope(
        order_ids=orders, accounts={account for account, _, _ in new}, merchant_ids=merchants
    )


def merchant_body(**overrides: Any) -> dict[str, Any]:
    """An operator's onboarding of a test shop (the bank account is a test IBAN)."""
    body: dict[str, Any] = {
        "name": "Test shop",
        "commission_rate": "0.05",
        "settlement_currency": "CNY",
        "bank_account_number": "DE89 3704 0044 0532 0130 00",
    }
    body.update(overrides)
    return body


async def create_merchant(api: httpx.AsyncClient, rate: str = "0.05") -> str:
    response = await api.post("/v1/merchants", json=merchant_body(commission_rate=rate))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


_key_counter = 0


def order_body(merchant_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": merchant_id,
        "channel": "alipay",
        "currency": "CNY",
        "lines": [
            {"sku": "tea-001", "name": "Oolong tea", "quantity": 2, "unit_amount": 1999},
            {"sku": "cup-002", "name": "Tea cup", "quantity": 1, "unit_amount": 3500},
        ],
        "payment_timeout_seconds": 60,
    }
    body.update(overrides)
    return body


async def create_order(
    api: httpx.AsyncClient, merchant_id: str, key: str | None = None, **overrides: Any
) -> dict[str, Any]:
    global _key_counter
    _key_counter += 1
    headers = {"Idempotency-Key": key or f"test-{time.time_ns()}-{_key_counter}"}
    response = await api.post(
        "/v1/orders", json=order_body(merchant_id, **overrides), headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_refund(
    client: httpx.AsyncClient, order_id: str, key: str | None = None, **body: Any
) -> httpx.Response:
    """POST a refund of `body` with an Idempotency-Key (a fresh one unless `key` is given)."""
    global _key_counter
    _key_counter += 1
    headers = {"Idempotency-Key": key or f"refund-{time.time_ns()}-{_key_counter}"}
    return await client.post(f"/v1/orders/{order_id}/refunds", json=body, headers=headers)


async def refund_done(api: httpx.AsyncClient, order_id: str, amount: int) -> dict[str, Any]:
    """Refund `amount` of the order and wait until the channel has paid it back."""
    asked = await post_refund(api, order_id, amount=amount)
    assert asked.status_code == 201, asked.text

    async def read() -> dict[str, Any]:
        return dict((await api.get(f"/v1/refunds/{asked.json()['id']}")).json())

    return await wait_for(read, lambda r: r["status"] == "succeeded", "the refund to succeed")


async def get_order(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/orders/{order_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def wait_status(
    api: httpx.AsyncClient, order_id: str, status: str, timeout: float = 20.0
) -> dict[str, Any]:
    return await wait_for(
        lambda: get_order(api, order_id),
        lambda order: order["status"] == status,
        f"order {order_id} to be {status}",
        timeout,
    )


async def pay(sandbox: httpx.AsyncClient, order_id: str, **options: Any) -> dict[str, Any]:
    response = await sandbox.post(f"/control/payments/{order_id}/pay", json=options)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def scraped(url: str, name: str, **labels: str) -> float:
    """The sum of the samples named `name` with `labels` that `url` (a /metrics) serves now."""
    async with http_client() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def order_refunds(engine: Engine, order_id: str) -> list[Refund]:
    """Every refund of the order, as the database holds it now."""
    with Session(engine) as session:
        return list(session.exec(select(Refund).where(Refund.order_id == order_id)).all())


async def one_succeeded_refund(engine: Engine, order_id: str) -> Refund:
    """The order's one refund, once it has succeeded (waited for, with wait_for's deadline)."""

    async def refunds() -> list[Refund]:
        return order_refunds(engine, order_id)

    [refund] = await wait_for(
        refunds, lambda r: len(r) == 1 and r[0].status == "succeeded", "one succeeded refund"
    )
    return refund
