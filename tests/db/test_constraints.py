"""The database refuses what must never be stored, whatever writes it.

For every named constraint of the models, one raw SQL statement that breaks it (and
nothing else) is refused on SQLite and PostgreSQL, against a shop whose money went
through every step (tests/db/books.py); each runs in a transaction that is rolled back.
On PostgreSQL a journal entry whose postings do not sum to zero per currency is refused
when its transaction commits. The constraints a migrated database has are the models'.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import CheckConstraint, Engine, ForeignKeyConstraint, UniqueConstraint, inspect
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from domain.ledger import AccountKind
from tests.db.books import Books, fill_books

# Reconciliation's scene: a run and an open exception of it.
_RUN = (
    "INSERT INTO reconciliation_runs (id, channel, day, status, bill_lines, exception_count,"
    " auto_resolved_count, started_at) VALUES ('alipay:2026-01-01', 'alipay', '2026-01-01',"
    " 'running', 0, 0, 0, :now)"
)
_IS_RUN = "WHERE id = 'alipay:2026-01-01'"
_EXCEPTION = (
    "INSERT INTO reconciliation_exceptions (id, run_id, channel, day, type, reference, detail,"
    " status, created_at) VALUES ('rex_1', 'alipay:2026-01-01', 'alipay', '2026-01-01',"
    " 'missing_there', :order, '', 'open', :now)"
)
_IS_EXCEPTION = "WHERE id = 'rex_1'"
_RESOLVED_BY_BUYER = (
    "UPDATE reconciliation_exceptions SET status = 'resolved', resolution_reason = 'r',"
    " resolved_at = :now, resolved_by = :buyer"
)
_QUOTE = (
    "INSERT INTO order_quotes (id, order_id, price_currency, price_amount,"
    " presentment_currency, presentment_amount, mid_rate, customer_rate, markup_bps,"
    " markup_amount, mid_residual, rate_source, rate_as_of, created_at, expires_at)"
    " VALUES ('quo_t', :open_order, 'CNY', 1000, 'USD', 140, '0.138', '0.1394', 100, 2,"
    " '0.1', 'sandbox', '2026-01-01', '2026-01-01', '2026-01-02')"
)
_SHOWN = (
    "INSERT INTO quoted_refunds (refund_id, quote_id, presentment_currency,"
    " presentment_amount, markup_returned, residual) VALUES (:refund, 'quo_t', 'USD', 10, 0, '0')"
)
_REALISED = (
    "INSERT INTO fx_realisations (id, order_id, channel, presentment_currency,"
    " presentment_amount, settlement_currency, settled_amount, markup_amount,"
    " rounding_amount, gain_loss_amount, created_at)"
    " VALUES ('fx_t', :order, :channel, 'USD', 10, 'CNY', 70, 0, 0, 0, :now)"
)

# Each constraint: the statements that set the scene (none, mostly), then the one that
# breaks it. `:name` parameters are the books' ids (`_params`).
_CONVERTED = (
    "INSERT INTO channel_conversions (id, order_id, kind, refund_id, channel, price_currency,"
    " price_amount, payer_currency, payer_amount, channel_rate, created_at)"
    " VALUES ('payment:t', :order, 'payment', NULL, 'alipay', 'HKD', 1000, 'CNY', 7000,"
    " '0.92', :now)"
)
_CONVERTING = (
    "INSERT INTO payout_conversions (payout_id, currency, credit_currency, credited_amount,"
    " credit_rate, updated_at) VALUES (:payout, :currency, 'USD', NULL, NULL, :now)"
)
CASES: dict[str, tuple[str, ...]] = {
    "ck_merchants_status": ("UPDATE merchants SET status = 'closed' WHERE id = :merchant",),
    "ck_users_role": ("UPDATE users SET role = 'admin' WHERE id = :buyer",),
    "ck_web_sessions_kind": (
        "INSERT INTO web_sessions (id, kind, subject_id, token_version, csrf_token, created_at,"
        " expires_at) VALUES ('s1', 'buyer', :buyer, 0, 't', '2026-01-01', '2026-01-02')",
    ),
    "ck_coupons_kind": ("UPDATE coupons SET kind = 'free' WHERE code = :coupon",),
    "ck_coupons_amount_off": ("UPDATE coupons SET amount_off = 0 WHERE code = :coupon",),
    "ck_coupons_min_total": ("UPDATE coupons SET min_total = -1 WHERE code = :coupon",),
    "ck_coupons_limits": ("UPDATE coupons SET max_redemptions = 0 WHERE code = :coupon",),
    "ck_orders_status": ("UPDATE orders SET status = 'lost' WHERE id = :open_order",),
    "ck_orders_discount_within_total": (
        "UPDATE orders SET discount_amount = -1, payable_amount = total_amount + 1"
        " WHERE id = :open_order",
    ),
    "ck_orders_payable": (
        "UPDATE orders SET payable_amount = payable_amount + 1 WHERE id = :open_order",
    ),
    "ck_orders_payment_timeout": (
        "UPDATE orders SET payment_timeout_seconds = 0 WHERE id = :open_order",
    ),
    "ck_orders_split": ("UPDATE orders SET channel_fee_amount = 1 WHERE id = :open_order",),
    "ck_orders_refunded_within_payable": (
        # More refunded than paid, its parts still adding up to it.
        "UPDATE orders SET refunded_amount = payable_amount + 1,"
        " refunded_net_amount = refunded_net_amount + payable_amount + 1 - refunded_amount"
        " WHERE id = :order",
    ),
    "ck_orders_refunded_parts": (
        "UPDATE orders SET refunded_net_amount = refunded_net_amount + 1 WHERE id = :order",
    ),
    "fk_orders_buyer": ("UPDATE orders SET buyer_id = 'usr_nobody' WHERE id = :order",),
    "fk_orders_coupon": ("UPDATE orders SET coupon_code = 'NO-SUCH' WHERE id = :open_order",),
    "fk_order_return_urls_order": (
        "INSERT INTO order_return_urls (order_id, return_url)"
        " VALUES ('ord_nobody', 'https://shop.example.com/thanks')",
    ),
    "ck_coupon_redemptions_status": (
        "UPDATE coupon_redemptions SET status = 'lost' WHERE order_id = :open_order",
    ),
    "fk_coupon_redemptions_order": (
        "INSERT INTO coupon_redemptions (order_id, coupon_code, status, updated_at)"
        " VALUES ('ord_nowhere', :coupon, 'reserved', :now)",
    ),
    "fk_coupon_redemptions_buyer": (
        "UPDATE coupon_redemptions SET buyer_id = 'usr_nobody' WHERE order_id = :open_order",
    ),
    "ck_order_lines_quantity_positive": (
        "UPDATE order_lines SET quantity = 0, line_total = 0, discount_amount = 0,"
        " payable_amount = 0 WHERE order_id = :open_order",
    ),
    "ck_order_lines_total": (
        "UPDATE order_lines SET line_total = line_total + 1, payable_amount = payable_amount + 1"
        " WHERE order_id = :open_order",
    ),
    "ck_order_lines_discount_within_total": (
        "UPDATE order_lines SET discount_amount = -1, payable_amount = line_total + 1"
        " WHERE order_id = :open_order",
    ),
    "ck_order_lines_payable": (
        "UPDATE order_lines SET payable_amount = payable_amount + 1 WHERE order_id = :open_order",
    ),
    "ck_payments_status": ("UPDATE payments SET status = 'lost' WHERE order_id = :open_order",),
    "ck_payments_amount_not_negative": (
        "UPDATE payments SET amount = -1 WHERE order_id = :open_order",
    ),
    "ck_payments_attempt_positive": (
        "UPDATE payments SET attempt = 0 WHERE order_id = :open_order",
    ),
    "ck_payments_paid_at": ("UPDATE payments SET status = 'paid' WHERE order_id = :open_order",),
    "uq_payments_channel_txn": (
        "UPDATE payments SET channel_txn_id = :txn WHERE order_id = :open_order",
    ),
    "uq_payments_one_paid_attempt": (
        "INSERT INTO payments (order_id, channel, attempt, status, channel_txn_id, amount,"
        " currency, paid_at, updated_at)"
        " VALUES (:order, :channel, 2, 'paid', 'txn_second', 1, :currency, :now, :now)",
    ),
    "ck_refunds_status": ("UPDATE refunds SET status = 'rejected' WHERE id = :refund",),
    "ck_refunds_requested_by": ("UPDATE refunds SET requested_by = 'robot' WHERE id = :refund",),
    "ck_refunds_amount_positive": (
        "INSERT INTO refunds (id, order_id, channel, amount, currency, reason, status,"
        " requested_by, channel_fee_amount, commission_amount, merchant_net_amount,"
        " from_available, created_at, updated_at) VALUES ('rf_zero', :order, :channel, 0,"
        " :currency, 'compensation', 'pending', 'system', 0, 0, 0, FALSE, :now, :now)",
    ),
    "ck_refunds_parts": (
        "UPDATE refunds SET merchant_net_amount = merchant_net_amount + 1 WHERE id = :refund",
    ),
    "fk_refunds_order": ("UPDATE refunds SET order_id = 'ord_nowhere' WHERE id = :refund",),
    "ck_refund_lines_quantity_positive": (
        "INSERT INTO refund_lines (refund_id, line_no, quantity, amount) VALUES (:refund, 7, 0, 0)",
    ),
    "ck_refund_lines_amount_not_negative": (
        "INSERT INTO refund_lines (refund_id, line_no, quantity, amount)"
        " VALUES (:refund, 7, 1, -1)",
    ),
    "ck_accounts_kind": (
        "INSERT INTO accounts (id, kind, owner, currency, balance, updated_at)"
        " VALUES ('vault:platform:CNY', 'vault', 'platform', 'CNY', 0, :now)",
    ),
    "ck_accounts_id_parts": (
        "INSERT INTO accounts (id, kind, owner, currency, balance, updated_at)"
        " VALUES ('bank:platform:CNY-2', 'bank', 'elsewhere', 'CNY', 0, :now)",
    ),
    "ck_accounts_held_money_not_negative": (
        "UPDATE accounts SET balance = 1 WHERE id = :in_transit",  # debit 1: owes 1
    ),
    "ck_journal_entries_kind": (
        "INSERT INTO journal_entries (id, kind, currency, created_at)"
        " VALUES ('e_gift', 'gift', :currency, :now)",
    ),
    "ck_journal_entries_reversal": (
        "INSERT INTO journal_entries (id, order_id, kind, currency, created_at)"
        " VALUES ('e_rev', :order, 'reversal', :currency, :now)",
    ),
    "uq_journal_entries_reverses": (
        "INSERT INTO journal_entries (id, order_id, kind, currency, reverses_entry_id,"
        " created_at) VALUES ('e_rev1', :order, 'reversal', :currency, :entry, :now)",
        "INSERT INTO journal_entries (id, order_id, kind, currency, reverses_entry_id,"
        " created_at) VALUES ('e_rev2', :order, 'reversal', :currency, :entry, :now)",
    ),
    "fk_journal_entries_reverses": (
        "INSERT INTO journal_entries (id, kind, currency, reverses_entry_id, created_at)"
        " VALUES ('e_rev', 'reversal', :currency, 'e_nowhere', :now)",
    ),
    "fk_journal_entries_order": (
        "INSERT INTO journal_entries (id, order_id, kind, currency, created_at)"
        " VALUES ('e_orphan', 'ord_nowhere', 'settlement', :currency, :now)",
    ),
    "fk_journal_entries_merchant": (
        "INSERT INTO journal_entries (id, merchant_id, kind, currency, created_at)"
        " VALUES ('e_orphan', 'mer_nowhere', 'payout_started', :currency, :now)",
    ),
    "ck_postings_amount_not_zero": (
        "INSERT INTO postings (entry_id, account, currency, amount)"
        " VALUES (:entry, :in_transit, :currency, 0)",
    ),
    "fk_postings_account_currency": (
        "INSERT INTO postings (entry_id, account, currency, amount)"
        " VALUES (:entry, :in_transit, 'USD', 1)",
    ),
    "ck_party_notifications_recipient": (
        "INSERT INTO party_notifications (id, order_id, recipient, event, created_at)"
        " VALUES ('n_courier', :order, 'courier', 'order_paid', :now)",
    ),
    "fk_party_notifications_order": (
        "INSERT INTO party_notifications (id, order_id, recipient, event, created_at)"
        " VALUES ('n_orphan', 'ord_nowhere', 'buyer', 'order_paid', :now)",
    ),
    "ck_reviews_rating": ("UPDATE reviews SET rating = 6 WHERE order_id = :order",),
    "fk_reviews_merchant": (
        "UPDATE reviews SET merchant_id = 'mer_nowhere' WHERE order_id = :order",
    ),
    "fk_reviews_buyer": ("UPDATE reviews SET buyer_id = 'usr_nobody' WHERE order_id = :order",),
    "ck_webhook_events_type": (
        "UPDATE webhook_events SET type = 'order.lost' WHERE order_id = :order",
    ),
    "ck_webhook_events_attempts": (
        "UPDATE webhook_events SET attempts = -1 WHERE order_id = :order",
    ),
    "fk_webhook_events_merchant": (
        "UPDATE webhook_events SET merchant_id = 'mer_nowhere' WHERE order_id = :order",
    ),
    "fk_webhook_events_order": (
        "UPDATE webhook_events SET order_id = 'ord_nowhere' WHERE order_id = :order",
    ),
    "uq_idempotency_keys_order": (
        "INSERT INTO idempotency_keys (key, request_hash, order_id, created_at)"
        " VALUES ('operator:op_1:again', 'x', :open_order, :now)",
    ),
    "ck_idempotency_keys_response": (
        "UPDATE idempotency_keys SET status_code = 201 WHERE order_id = :open_order",
    ),
    "uq_statements_sequence": (
        "INSERT INTO statements (id, merchant_id, day, currency, sequence, cutoff,"
        " opening_balance, gross_amount, channel_fee_amount, commission_amount,"
        " refunded_amount, returned_amount, clawback_amount, payout_amount, closing_balance,"
        " order_count, created_at) SELECT id || '-again', merchant_id, day, currency,"
        " sequence, cutoff, opening_balance, gross_amount, channel_fee_amount,"
        " commission_amount, refunded_amount, returned_amount, clawback_amount,"
        " payout_amount, closing_balance, order_count, created_at"
        " FROM statements WHERE id = :statement",
    ),
    "ck_statements_sequence_positive": (
        "UPDATE statements SET sequence = 0 WHERE id = :statement",
    ),
    "ck_statements_amounts_not_negative": (
        "UPDATE statements SET order_count = -1 WHERE id = :statement",
    ),
    "ck_statements_add_up": (
        "UPDATE statements SET closing_balance = closing_balance + 1 WHERE id = :statement",
    ),
    "fk_statements_merchant": (
        "UPDATE statements SET merchant_id = 'mer_nowhere' WHERE id = :statement",
    ),
    "ck_payouts_status": ("UPDATE payouts SET status = 'lost' WHERE id = :payout",),
    "ck_payouts_amount_positive": ("UPDATE payouts SET amount = 0 WHERE id = :payout",),
    "uq_payouts_statement": (
        "INSERT INTO payouts (id, statement_id, merchant_id, amount, currency, status,"
        " created_at, updated_at) VALUES ('po_again', :statement, :merchant, 1, :currency,"
        " 'pending', :now, :now)",
    ),
    "fk_payouts_merchant": ("UPDATE payouts SET merchant_id = 'mer_nowhere' WHERE id = :payout",),
    # A payout the bank converts (revision 0012): of a known payout, into another
    # currency, the credited amount with its rate.
    # The payout's own id but another currency than the payout's: no such (id, currency).
    "fk_payout_conversions_payout": (_CONVERTING.replace(":currency, 'USD'", "'EUR', 'USD'"),),
    "ck_payout_conversions_currencies": (_CONVERTING.replace("'USD'", ":currency"),),
    "ck_payout_conversions_credited": (_CONVERTING.replace("NULL, NULL", "0, '0.14'"),),
    "uq_reconciliation_runs_channel_day": (
        _RUN.replace("VALUES ('alipay:2026-01-01'", "VALUES ('again'"),
    ),
    "ck_reconciliation_runs_status": (f"UPDATE reconciliation_runs SET status = 'lost' {_IS_RUN}",),
    "ck_reconciliation_runs_counts": (
        f"UPDATE reconciliation_runs SET auto_resolved_count = 1 {_IS_RUN}",
    ),
    "ck_reconciliation_runs_finished_at": (
        f"UPDATE reconciliation_runs SET status = 'finished' {_IS_RUN}",
    ),
    "ck_reconciliation_exceptions_type": (
        f"UPDATE reconciliation_exceptions SET type = 'lost' {_IS_EXCEPTION}",
    ),
    "ck_reconciliation_exceptions_status": (
        f"UPDATE reconciliation_exceptions SET status = 'lost' {_IS_EXCEPTION}",
    ),
    "ck_reconciliation_exceptions_line_kind": (
        f"UPDATE reconciliation_exceptions SET line_kind = 'fee' {_IS_EXCEPTION}",
    ),
    "ck_reconciliation_exceptions_amounts": (
        f"UPDATE reconciliation_exceptions SET theirs_amount = -1 {_IS_EXCEPTION}",
    ),
    "ck_reconciliation_exceptions_resolution": (
        f"UPDATE reconciliation_exceptions SET resolved_at = :now {_IS_EXCEPTION}",
    ),
    "fk_reconciliation_exceptions_run": (
        f"UPDATE reconciliation_exceptions SET run_id = 'nowhere' {_IS_EXCEPTION}",
    ),
    "fk_reconciliation_exceptions_entry": (
        f"{_RESOLVED_BY_BUYER}, adjustment_entry_id = 'nowhere' {_IS_EXCEPTION}",
    ),
    "fk_reconciliation_exceptions_resolver": (
        "UPDATE reconciliation_exceptions SET status = 'resolved', resolution_reason = 'r',"
        f" resolved_at = :now, resolved_by = 'usr_nobody' {_IS_EXCEPTION}",
    ),
    "uq_reconciliation_exceptions_entry": (
        _EXCEPTION.replace("VALUES ('rex_1'", "VALUES ('rex_2'"),
        f"{_RESOLVED_BY_BUYER}, adjustment_entry_id = :entry {_IS_EXCEPTION}",
        f"{_RESOLVED_BY_BUYER}, adjustment_entry_id = :entry WHERE id = 'rex_2'",
    ),
    # Cross-border (revision 0009): a quote for the open order sets most scenes.
    "ck_merchant_fx_terms_markup": (
        "INSERT INTO merchant_fx_terms (merchant_id, fx_markup_bps) VALUES (:merchant, 1001)",
    ),
    "fk_merchant_fx_terms_merchant": (
        "INSERT INTO merchant_fx_terms (merchant_id, fx_markup_bps) VALUES ('mer_nowhere', 0)",
    ),
    "fk_order_quotes_order": (_QUOTE.replace(":open_order", "'ord_nowhere'"),),
    "uq_order_quotes_order": (_QUOTE, _QUOTE.replace("'quo_t'", "'quo_t2'")),
    "ck_order_quotes_amounts": (
        _QUOTE,
        "UPDATE order_quotes SET markup_amount = presentment_amount WHERE id = 'quo_t'",
    ),
    "ck_order_quotes_markup": (
        _QUOTE,
        "UPDATE order_quotes SET markup_bps = 1001 WHERE id = 'quo_t'",
    ),
    "ck_order_quotes_currencies": (
        _QUOTE,
        "UPDATE order_quotes SET presentment_currency = price_currency WHERE id = 'quo_t'",
    ),
    "ck_order_quotes_expiry": (
        _QUOTE,
        "UPDATE order_quotes SET expires_at = created_at WHERE id = 'quo_t'",
    ),
    "fk_quoted_refunds_refund": (_QUOTE, _SHOWN.replace(":refund", "'rf_nowhere'")),
    "fk_quoted_refunds_quote": (_SHOWN.replace("'quo_t'", "'quo_nowhere'"),),
    "ck_quoted_refunds_amounts": (_QUOTE, _SHOWN.replace("10, 0,", "10, 11,")),
    "fk_fx_realisations_order": (_REALISED.replace(":order", "'ord_nowhere'"),),
    "ck_fx_realisations_direction": (_REALISED.replace("'CNY', 70", "'CNY', -70"),),
    # A wallet's own conversion (revision 0010): of a known order, a payment or a
    # refund, of positive amounts, between two currencies.
    "fk_channel_conversions_order": (_CONVERTED.replace(":order", "'ord_nowhere'"),),
    "ck_channel_conversions_kind": (_CONVERTED.replace("'payment'", "'bonus'"),),
    "ck_channel_conversions_amounts": (_CONVERTED.replace("1000, 'CNY', 7000", "1000, 'CNY', 0"),),
    "ck_channel_conversions_currencies": (_CONVERTED.replace("'CNY', 7000", "'HKD', 7000"),),
    # Channel sweeps (revision 0011): a listed transfer names its posted entry.
    "fk_channel_sweeps_entry": (
        "INSERT INTO channel_sweeps (transfer_id, channel, day, currency, gross, fees,"
        " refunds, net, entry_id, recorded_at)"
        " VALUES ('tr_t', 'card', '2026-11-29', 'CNY', 10, 0, 0, 10, 'nowhere', :now)",
    ),
}
# Every reconciliation case plays on a run and an open exception of it.
for _name, _statements in list(CASES.items()):
    if "reconciliation" in _name:
        CASES[_name] = (_RUN, _EXCEPTION, *_statements)
_PREFIXES = {"ck_", "uq_", "fk_"}  # ours; the baseline's have none, or PostgreSQL's own
# Constraints no statement can break alone: another refuses it first.
IMPLIED = {
    # The primary key already makes (id, currency) unique; it is there for postings'
    # foreign key (account, currency).
    "uq_accounts_id_currency",
    # Likewise for payouts (revision 0012), for payout_conversions' foreign key.
    "uq_payouts_id_currency",
}


@pytest.fixture(scope="module")
def books(ledger_engine: Engine) -> Books:
    return fill_books(ledger_engine)


def _params(books: Books) -> dict[str, object]:
    return {
        "merchant": books.shop.merchant_id,
        "channel": books.shop.channel,
        "currency": books.shop.currency,
        "buyer": books.buyer_id,
        "coupon": books.coupon_code,
        "order": books.order_id,
        "open_order": books.open_order_id,
        "refund": books.refund_id,
        "entry": books.entry_id,
        "statement": books.statement_id,
        "payout": books.payout_id,
        "txn": books.txn_id,
        "in_transit": books.account(AccountKind.MERCHANT_IN_TRANSIT),
        "now": datetime.now(UTC),
    }


def _named_constraints() -> set[str]:
    names = set()
    for table in SQLModel.metadata.tables.values():
        names |= {str(c.name) for c in table.constraints if str(c.name)[:3] in _PREFIXES}
        names |= {str(i.name) for i in table.indexes if str(i.name).startswith("uq_")}
    return names


def test_every_constraint_has_a_statement_that_breaks_it() -> None:
    assert set(CASES) | IMPLIED == _named_constraints()


@pytest.mark.parametrize("constraint", sorted(CASES))
def test_the_database_refuses_a_row_that_breaks(books: Books, constraint: str) -> None:
    *scene, breaking = CASES[constraint]
    params = _params(books)
    with books.engine.connect() as connection, connection.begin() as transaction:
        for statement in scene:
            connection.execute(sql(statement), params)
        with pytest.raises(IntegrityError) as refused:
            connection.execute(sql(breaking), params)
        transaction.rollback()
    _assert_refused_by(refused.value, constraint)


def _assert_refused_by(error: IntegrityError, constraint: str) -> None:
    """PostgreSQL names the constraint; SQLite names a CHECK, and says only which kind of
    constraint refused a key (the statements break nothing else)."""
    diagnostics = getattr(error.orig, "diag", None)
    if diagnostics is not None:
        assert diagnostics.constraint_name == constraint
        return
    message = str(error.orig)
    expected = {
        "ck_": f"CHECK constraint failed: {constraint}",
        "uq_": "UNIQUE constraint failed",
        "fk_": "FOREIGN KEY constraint failed",
    }[constraint[:3]]
    assert expected in message


def test_a_migrated_database_has_exactly_the_models_constraints(ledger_engine: Engine) -> None:
    """Autogenerate compares no CHECK (nor constraint names): an enum that gained a value
    and no revision would differ here. SQLite keeps each CHECK's text as written."""
    inspector = inspect(ledger_engine)
    sqlite = ledger_engine.dialect.name == "sqlite"
    for table in SQLModel.metadata.sorted_tables:
        found = {
            c["name"]: c["sqltext"] if sqlite else None
            for c in inspector.get_check_constraints(table.name)
        }
        found |= {c["name"]: None for c in inspector.get_unique_constraints(table.name)}
        found |= {c["name"]: None for c in inspector.get_foreign_keys(table.name) if c["name"]}
        wanted = {
            str(c.name): str(c.sqltext) if sqlite and isinstance(c, CheckConstraint) else None
            for c in table.constraints
            if isinstance(c, CheckConstraint | UniqueConstraint | ForeignKeyConstraint) and c.name
        }
        assert {k: v for k, v in found.items() if k and k[:3] in _PREFIXES} == wanted, table.name


# -- PostgreSQL: entries balance per currency, checked at COMMIT ----------------------


@pytest.fixture
def postgres_books(books: Books) -> Iterator[Books]:
    if books.engine.dialect.name != "postgresql":
        pytest.skip("SQLite checks balance in db.ledger.post_entry only")
    yield books


def _refused_at_commit(books: Books, *statements: str) -> str:
    """Run the statements (each is taken), then COMMIT, which must refuse; the reason."""
    params = _params(books)
    with books.engine.connect() as connection:
        transaction = connection.begin()
        for statement in statements:
            connection.execute(sql(statement), params)
        with pytest.raises(IntegrityError) as refused:
            transaction.commit()
    return str(refused.value.orig)


_ENTRY = (
    "INSERT INTO journal_entries (id, merchant_id, kind, currency, created_at)"
    " VALUES ('e_unbalanced', :merchant, 'payout_started', :currency, :now)"
)
_POSTING = "INSERT INTO postings (entry_id, account, currency, amount) VALUES"


def test_an_entry_that_does_not_balance_is_refused_at_commit(postgres_books: Books) -> None:
    reason = _refused_at_commit(
        postgres_books,
        _ENTRY,
        f"{_POSTING} ('e_unbalanced', :in_transit, :currency, -100)",
    )
    assert "journal entry e_unbalanced does not balance: CNY -100" in reason


def test_an_entry_must_balance_in_each_currency_not_only_in_all(postgres_books: Books) -> None:
    reason = _refused_at_commit(
        postgres_books,
        "INSERT INTO accounts (id, kind, owner, currency, balance, updated_at)"
        " VALUES ('bank:platform:USD', 'bank', 'platform', 'USD', 0, :now)"
        " ON CONFLICT DO NOTHING",
        _ENTRY,
        f"{_POSTING} ('e_unbalanced', :in_transit, :currency, -100)",
        f"{_POSTING} ('e_unbalanced', 'bank:platform:USD', 'USD', 100)",
    )
    assert "does not balance: CNY -100, USD 100" in reason


def test_an_entry_without_postings_is_refused_at_commit(postgres_books: Books) -> None:
    assert "has no postings" in _refused_at_commit(postgres_books, _ENTRY)


def test_a_posted_entry_cannot_be_unbalanced_later(postgres_books: Books) -> None:
    reason = _refused_at_commit(
        postgres_books,
        "UPDATE postings SET amount = amount + 1 WHERE id ="
        " (SELECT min(id) FROM postings WHERE entry_id = :entry)",
    )
    assert f"journal entry {postgres_books.entry_id} does not balance" in reason
