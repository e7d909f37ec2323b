"""A real database and paid orders for the ledger tests, without starting the system.

`ledger_engine` is SQLite in a temporary directory, and PostgreSQL too when
TEST_DATABASE_URL is set. The PostgreSQL database is shared with every other test of
the session, so nothing here drops a table, and each `Shop` is a fresh merchant selling
through a channel of its own: its merchant and channel accounts hold only its money,
and `Shop.entry_totals` scopes the shared platform accounts to its entries.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

import pytest
from sqlalchemy import Engine, func, insert, or_
from sqlmodel import Session, col, select

from db.identity import User
from db.order_money import capture_payment
from db.reconcile import Scope, ledger_problems
from db.tables import (
    Account,
    Coupon,
    JournalEntry,
    Merchant,
    Order,
    OrderLine,
    Payment,
    Payout,
    Posting,
    Refund,
    Statement,
)
from domain.ledger import AccountKind, account_id, account_parts, normal_balance
from domain.order_status import OrderStatus
from tests.databases import migrated_engine

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
CURRENCY = "CNY"
FEE_RATE = Decimal("0.006")
COMMISSION_RATE = Decimal("0.05")
_CHANNEL_KINDS = (
    AccountKind.CHANNEL_CLEARING,
    AccountKind.REFUNDS_IN_FLIGHT,
    AccountKind.CHANNEL_FEE,
    AccountKind.LATE_PAYMENTS,
)
_PLATFORM_KINDS = (AccountKind.PLATFORM_COMMISSION, AccountKind.BANK)


class Line(NamedTuple):
    quantity: int
    unit_amount: int
    discount_amount: int = 0

    @property
    def payable_amount(self) -> int:
        return self.quantity * self.unit_amount - self.discount_amount


# Payable 10000: 3 x 2000 less 1000 (5000, not a multiple of 3 units), and 2 x 2500.
TWO_LINES = (Line(3, 2000, 1000), Line(2, 2500))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Shop:
    """One merchant selling through a channel of its own, on a real database."""

    engine: Engine
    merchant_id: str
    channel: str
    currency: str = CURRENCY

    def account(self, kind: AccountKind) -> str:
        if kind in _PLATFORM_KINDS:
            owner = "platform"
        elif kind in _CHANNEL_KINDS:
            owner = self.channel
        else:
            owner = self.merchant_id
        return account_id(kind, owner, self.currency)

    def balances(self) -> dict[AccountKind, int]:
        """The stored normal balances of the accounts that are this shop's alone."""
        own = {self.account(k): k for k in AccountKind if k not in _PLATFORM_KINDS}
        with Session(self.engine) as session:
            stored = dict(
                session.exec(
                    select(Account.id, Account.balance).where(col(Account.id).in_(own))
                ).all()
            )
        return {kind: normal_balance(kind, stored.get(account, 0)) for account, kind in own.items()}

    def entry_totals(self) -> dict[AccountKind, int]:
        """Normal balances by kind, summed over this shop's entries only (platform included)."""
        mine = or_(
            col(JournalEntry.merchant_id) == self.merchant_id,
            col(JournalEntry.order_id).in_(
                select(Order.id).where(Order.merchant_id == self.merchant_id)
            ),
        )
        with Session(self.engine) as session:
            rows = session.exec(
                select(Posting.account, func.sum(Posting.amount))
                .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
                .where(mine)
                .group_by(col(Posting.account))
            ).all()
        totals = dict.fromkeys(AccountKind, 0)
        for account, amount in rows:
            kind = account_parts(account)[0]
            totals[kind] += normal_balance(kind, int(amount))
        return totals

    def ledger_problems(self, orders: Collection[str] | None = None) -> list[str]:
        """`db.reconcile.ledger_problems` kept to this shop: its accounts, its orders (or
        only `orders`), its statements.

        The whole-database version costs two queries per paid order of every test that
        ever ran on the shared database, so it runs once per module (`ledger_engine`).
        """
        own = [self.account(kind) for kind in AccountKind if kind not in _PLATFORM_KINDS]
        with Session(self.engine) as session:
            if orders is None:
                mine = select(Order.id).where(Order.merchant_id == self.merchant_id)
                orders = list(session.exec(mine).all())
            scope = Scope(order_ids=orders, accounts=own, merchant_ids=[self.merchant_id])
            return ledger_problems(session, scope)

    def snapshot(self) -> dict[str, object]:
        """Everything of this shop a retried call could change: balances, rows, entry ids."""
        # Sessions one after the other, never nested: on SQLite every transaction, even a
        # read, begins IMMEDIATE and so holds the single write lock until it ends.
        balances, entry_totals = self.balances(), self.entry_totals()
        with Session(self.engine) as session:
            orders = session.exec(
                select(Order).where(Order.merchant_id == self.merchant_id).order_by(col(Order.id))
            ).all()
            order_ids = [order.id for order in orders]
            refunds = session.exec(
                select(Refund.id, Refund.status).where(col(Refund.order_id).in_(order_ids))
            ).all()
            entries = session.exec(
                select(JournalEntry.id).where(
                    or_(
                        col(JournalEntry.merchant_id) == self.merchant_id,
                        col(JournalEntry.order_id).in_(order_ids),
                    )
                )
            ).all()
            statements = session.exec(
                select(Statement.id).where(Statement.merchant_id == self.merchant_id)
            ).all()
            payouts = session.exec(
                select(Payout.id, Payout.status).where(Payout.merchant_id == self.merchant_id)
            ).all()
            return {
                "balances": balances,
                "entry_totals": entry_totals,
                "orders": [
                    (o.id, o.status, o.refunded_amount, o.funds_released_at is not None)
                    for o in orders
                ],
                "refunds": sorted(tuple(r) for r in refunds),
                "entries": sorted(entries),
                "statements": sorted(statements),
                "payouts": sorted(tuple(p) for p in payouts),
            }

    def paid_order(
        self,
        lines: Sequence[Line] = TWO_LINES,
        *,
        channel_fee_rate: Decimal = FEE_RATE,
        commission_rate: Decimal = COMMISSION_RATE,
        paid_at: datetime | None = None,
    ) -> str:
        """An order as the saga leaves it once paid and notified: captured, awaiting receipt."""
        order_id = new_id("ord")
        now = datetime.now(UTC)
        payable = sum(line.payable_amount for line in lines)
        with Session(self.engine) as session, session.begin():
            order = Order(
                id=order_id,
                merchant_id=self.merchant_id,
                channel=self.channel,
                currency=self.currency,
                total_amount=sum(line.quantity * line.unit_amount for line in lines),
                discount_amount=sum(line.discount_amount for line in lines),
                payable_amount=payable,
                channel_fee_rate=str(channel_fee_rate),
                commission_rate=str(commission_rate),
                payment_timeout_seconds=900,
                status=OrderStatus.PAID,
                created_at=now,
                updated_at=now,
            )
            session.add(order)
            session.flush()
            session.add_all(
                OrderLine(
                    order_id=order_id,
                    line_no=line_no,
                    sku=f"sku-{line_no}",
                    name=f"item {line_no}",
                    quantity=line.quantity,
                    unit_amount=line.unit_amount,
                    line_total=line.quantity * line.unit_amount,
                    discount_amount=line.discount_amount,
                    payable_amount=line.payable_amount,
                )
                for line_no, line in enumerate(lines)
            )
            session.add(
                Payment(
                    order_id=order_id,
                    channel=self.channel,
                    status="paid",
                    channel_txn_id=new_id("txn"),
                    amount=payable,
                    currency=self.currency,
                    paid_at=paid_at or now,
                    updated_at=now,
                )
            )
            capture_payment(session, order)
            order.status = OrderStatus.AWAITING_RECEIPT
        return order_id


def open_shop(engine: Engine) -> Shop:
    shop = Shop(engine=engine, merchant_id=new_id("mer"), channel=new_id("ch"))
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.add(
            Merchant(
                id=shop.merchant_id,
                name="Test shop",
                commission_rate=str(COMMISSION_RATE),
                created_at=now,
                updated_at=now,
            )
        )
    return shop


def new_buyer(engine: Engine) -> str:
    """A buyer's user row (orders, holds and reviews name real users); returns its id."""
    buyer_id = new_id("usr")
    now = datetime.now(UTC)
    # The baseline's columns only, so that the migration tests can make buyers in a
    # database at any revision (later columns have server defaults).
    with Session(engine) as session, session.begin():
        session.execute(
            insert(User).values(
                id=buyer_id,
                email=f"{buyer_id}@buyers.example.com",
                role="buyer",
                password_hash="not-a-hash",  # never signs in
                display_name="",
                created_at=now,
                updated_at=now,
            )
        )
    return buyer_id


def make_coupon(shop: Shop, quantity: int, per_buyer_limit: int | None = None) -> str:
    """A fixed 100-off coupon in the shop's currency, redeemable `quantity` times."""
    code = new_id("C")
    with Session(shop.engine) as session, session.begin():
        session.add(
            Coupon(
                code=code,
                kind="fixed",
                amount_off=100,
                currency=shop.currency,
                max_redemptions=quantity,
                per_buyer_limit=per_buyer_limit,
                created_at=datetime.now(UTC),
            )
        )
    return code


def whole_ledger_problems(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return ledger_problems(session)


@pytest.fixture(scope="module", params=BACKENDS)
def ledger_engine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str | None,
) -> Iterator[Engine]:
    """The module's database; once its tests are done, the whole ledger must reconcile."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger')}/paysaga.db"
    else:
        assert postgres_url is not None
        url = postgres_url
    engine = migrated_engine(url)  # never drop: the session's other tests share this database
    yield engine
    try:
        assert whole_ledger_problems(engine) == []
    finally:
        engine.dispose()


@pytest.fixture
def shop(ledger_engine: Engine) -> Iterator[Shop]:
    """A fresh shop; once the test is done, its ledger must still reconcile."""
    shop = open_shop(ledger_engine)
    yield shop
    assert shop.ledger_problems() == []
