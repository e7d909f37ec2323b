"""Reconciliation: a run per channel and day, and the exceptions it finds.

`reconciliation_runs` holds one row per channel-day (unique), however often the run is
started; `reconciliation_exceptions` each difference with both sides' figures and how it
was closed: by the worker, or by an operator with a reason and perhaps an adjusting
journal entry. Both tables start empty; no existing row changes. Downgrade drops them.

Revision ID: 0008_reconciliation
Revises: 0007_ledger_kinds
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0008_reconciliation"
down_revision: str | None = "0007_ledger_kinds"
branch_labels: str | None = None
depends_on: str | None = None

_TYPES = (
    "missing_here",
    "missing_there",
    "amount_mismatch",
    "status_mismatch",
    "fee_mismatch",
    "refund_missing",
    "duplicate_line",
    "bill_not_ready",
    "bill_corrupt",
)
_INDEXED = ("run_id", "channel", "day", "type", "reference", "order_id", "status")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _money(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=True)


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("day", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("bill_lines", sa.Integer(), nullable=False),
        sa.Column("exception_count", sa.Integer(), nullable=False),
        sa.Column("auto_resolved_count", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "day", name="uq_reconciliation_runs_channel_day"),
        sa.CheckConstraint(
            "status IN ('running', 'finished')", name="ck_reconciliation_runs_status"
        ),
        sa.CheckConstraint(
            "bill_lines >= 0 AND exception_count >= 0 AND auto_resolved_count >= 0"
            " AND auto_resolved_count <= exception_count",
            name="ck_reconciliation_runs_counts",
        ),
        sa.CheckConstraint(
            "(status = 'finished') = (finished_at IS NOT NULL)",
            name="ck_reconciliation_runs_finished_at",
        ),
    )
    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", AutoString(), nullable=False),
        sa.Column("run_id", AutoString(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("day", AutoString(), nullable=False),
        sa.Column("type", AutoString(), nullable=False),
        sa.Column("line_kind", AutoString(), nullable=True),
        sa.Column("reference", AutoString(), nullable=False),
        sa.Column("order_id", AutoString(), nullable=True),
        sa.Column("currency", AutoString(), nullable=True),
        _money("ours_amount"),
        _money("theirs_amount"),
        _money("ours_fee"),
        _money("theirs_fee"),
        sa.Column("ours_status", AutoString(), nullable=True),
        sa.Column("channel_txn_id", AutoString(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("auto_action", AutoString(), nullable=True),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.Column("resolved_by", AutoString(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("adjustment_entry_id", AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(
            f"type IN ({_listed(_TYPES)})", name="ck_reconciliation_exceptions_type"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'auto_resolved', 'resolved')",
            name="ck_reconciliation_exceptions_status",
        ),
        sa.CheckConstraint(
            "line_kind IS NULL OR line_kind IN ('payment', 'refund', 'sweep')",
            name="ck_reconciliation_exceptions_line_kind",
        ),
        sa.CheckConstraint(
            "(ours_amount IS NULL OR ours_amount >= 0) AND (theirs_amount IS NULL"
            " OR theirs_amount >= 0) AND (ours_fee IS NULL OR ours_fee >= 0)"
            " AND (theirs_fee IS NULL OR theirs_fee >= 0)",
            name="ck_reconciliation_exceptions_amounts",
        ),
        sa.CheckConstraint(
            "(status <> 'open' OR (resolution_reason IS NULL AND resolved_at IS NULL"
            " AND resolved_by IS NULL AND adjustment_entry_id IS NULL))"
            " AND (status <> 'auto_resolved' OR (resolution_reason IS NOT NULL"
            " AND resolved_at IS NOT NULL AND resolved_by IS NULL"
            " AND adjustment_entry_id IS NULL))"
            " AND (status <> 'resolved' OR (resolution_reason IS NOT NULL"
            " AND resolved_at IS NOT NULL AND resolved_by IS NOT NULL))",
            name="ck_reconciliation_exceptions_resolution",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["reconciliation_runs.id"], name="fk_reconciliation_exceptions_run"
        ),
        sa.ForeignKeyConstraint(
            ["adjustment_entry_id"],
            ["journal_entries.id"],
            name="fk_reconciliation_exceptions_entry",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name="fk_reconciliation_exceptions_resolver"
        ),
        sa.UniqueConstraint("adjustment_entry_id", name="uq_reconciliation_exceptions_entry"),
    )
    for column in _INDEXED:
        op.create_index(
            f"ix_reconciliation_exceptions_{column}", "reconciliation_exceptions", [column]
        )
    op.create_index(
        "ix_reconciliation_exceptions_list", "reconciliation_exceptions", ["created_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("reconciliation_exceptions")  # its indexes go with it
    op.drop_table("reconciliation_runs")
