"""A statement covers a range of its merchant's postings, not a row per entry.

Before, a statement wrote a `statement_entries` row for every entry it covered (a million
a day for a million orders), each checked against its entry and its statement by a
foreign key that locks the entry's row: on PostgreSQL most of a day's settlement. Now a
statement records `covers_through`, the last posting id on the merchant's available
balance it covers. Postings on an account are numbered in the order their transactions
commit (every writer holds the account's row lock from before the posting is numbered
until its commit: db.ledger.post_entry, db.settlement), so a statement covers the new
postings of its account, those numbered after the account's statements' highest
`covers_through`, up to its own. Its own payout's entry, on the same account, is its by
the payout row (payout_started postings are never in a range).

`statement_entries` stays for the statements made before: their rows are what they
cover, and a posting of an entry listed there is never in a range. The account's latest
statement gets the highest posting id below which every posting is covered
(`covers_through`), so the next statement's range begins there, not at the account's
first posting; what it covers above that mark are the postings no row lists.

`ix_postings_account_id` (account, id) replaces `ix_postings_account`: a statement's range
is a range of it. Downgrade lists in statement_entries what each statement's range
covers and its payout's own entry (as the code before reads coverage: nothing is stated
twice), then drops the column and restores the index.

Revision ID: 0016_statement_ranges
Revises: 0015_paid_day_index
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016_statement_ranges"
down_revision: str | None = "0015_paid_day_index"
branch_labels: str | None = None
depends_on: str | None = None

# Each account's latest statement: the posting before the account's first posting that no
# statement covers (not a payout's own), or its last posting when every one is covered.
_MARK_LATEST = """
UPDATE statements SET covers_through = (
  SELECT coalesce(
    (SELECT min(p.id) - 1 FROM postings AS p JOIN journal_entries AS e ON e.id = p.entry_id
     WHERE p.account = a.id AND e.kind <> 'payout_started'
       AND NOT EXISTS (SELECT 1 FROM statement_entries AS c WHERE c.entry_id = e.id)),
    (SELECT max(p.id) FROM postings AS p WHERE p.account = a.id),
    0)
  FROM accounts AS a
  WHERE a.kind = 'merchant_available' AND a.owner = statements.merchant_id
    AND a.currency = statements.currency)
WHERE sequence = (SELECT max(s.sequence) FROM statements AS s
                  WHERE s.merchant_id = statements.merchant_id
                    AND s.currency = statements.currency)
"""


def upgrade() -> None:
    op.add_column("statements", sa.Column("covers_through", sa.BigInteger(), nullable=True))
    op.execute(_MARK_LATEST)
    op.create_index("ix_postings_account_id", "postings", ["account", "id"])
    op.drop_index("ix_postings_account", table_name="postings")


# What each statement's range covers, and each range statement's own payout entry, listed
# as the code before 0016 reads coverage: a downgraded settlement states none of it again.
_LIST_RANGES = """
INSERT INTO statement_entries (entry_id, statement_id)
SELECT DISTINCT p.entry_id, s.id FROM statements AS s
JOIN accounts AS a ON a.kind = 'merchant_available' AND a.owner = s.merchant_id
  AND a.currency = s.currency
JOIN postings AS p ON p.account = a.id AND p.id <= s.covers_through
  AND p.id > coalesce((SELECT max(b.covers_through) FROM statements AS b
                       WHERE b.merchant_id = s.merchant_id AND b.currency = s.currency
                         AND b.sequence < s.sequence), 0)
JOIN journal_entries AS e ON e.id = p.entry_id AND e.kind <> 'payout_started'
WHERE NOT EXISTS (SELECT 1 FROM statement_entries AS c WHERE c.entry_id = p.entry_id)
"""
_LIST_PAYOUTS = """
INSERT INTO statement_entries (entry_id, statement_id)
SELECT e.id, y.statement_id FROM payouts AS y
JOIN journal_entries AS e ON e.id = y.id || ':' || 'started'
WHERE NOT EXISTS (SELECT 1 FROM statement_entries AS c WHERE c.entry_id = e.id)
"""


def downgrade() -> None:
    op.execute(_LIST_RANGES)
    op.execute(_LIST_PAYOUTS)
    op.create_index("ix_postings_account", "postings", ["account"])
    op.drop_index("ix_postings_account_id", table_name="postings")
    # SQLite drops the column in place (3.35 and later), as 0015 does.
    op.execute("ALTER TABLE statements DROP COLUMN covers_through")
