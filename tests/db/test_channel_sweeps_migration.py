"""Revision 0011 on a database with a posted sweep in it: every row is kept, the
`channel_sweeps` table arrives empty and lists the next transfer posted (the one posted
before is listed when swept again, once); a downgrade drops it and keeps the rest."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import text
from sqlmodel import Session, select

from db.engine import make_engine
from db.ledger import post_entry
from db.migrate import alembic_config, current_revision, upgrade_to_head
from db.sweeps import post_channel_sweep
from db.tables import ChannelSweep, JournalEntry
from domain.keys import channel_sweep_entry_id
from domain.ledger import EntryKind, PostingLine
from tests.db.test_migrations import HEAD, fresh_url  # noqa: F401  (the fixture)

BEFORE = "0010_channel_conversions"
DAY = date(2026, 11, 29)


def test_channel_sweeps_arrive_empty_beside_the_kept_books(fresh_url: str) -> None:  # noqa: F811
    command.upgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    old = channel_sweep_entry_id("sweep_alipay_20261129_CNY")
    with Session(engine) as session, session.begin():
        post_entry(
            session,
            entry_id=old,
            kind=EntryKind.CHANNEL_SWEEP,
            currency="CNY",
            postings=[
                PostingLine("bank:platform:CNY", 500),
                PostingLine("channel_clearing:alipay:CNY", -500),
            ],
        )
    engine.dispose()

    upgrade_to_head(fresh_url)

    assert current_revision(fresh_url) == HEAD
    engine = make_engine(fresh_url)
    try:
        with Session(engine) as session, session.begin():
            assert session.get(JournalEntry, old) is not None
            count = session.execute(text("SELECT count(*) FROM channel_sweeps")).scalar_one()
            assert count == 0
            # Swept again after the upgrade: posted before, so not again, but now listed.
            again = post_channel_sweep(
                session, "sweep_alipay_20261129_CNY", "alipay", "CNY",
                day=DAY, gross=500, net=500, refunds=0,
            )  # fmt: skip
            assert again is False
            posted = post_channel_sweep(
                session, "sweep_wechatpay_20261129_CNY", "wechatpay", "CNY",
                day=DAY, gross=800, net=795, refunds=0,
            )  # fmt: skip
            assert posted is True
        with Session(engine) as session:
            rows = session.exec(select(ChannelSweep).order_by(ChannelSweep.transfer_id)).all()
            assert [(r.channel, r.day, r.net, r.entry_id) for r in rows] == [
                ("alipay", "2026-11-29", 500, old),
                ("wechatpay", "2026-11-29", 795, channel_sweep_entry_id(rows[1].transfer_id)),
            ]
    finally:
        engine.dispose()

    command.downgrade(alembic_config(fresh_url), BEFORE)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as connection:
            entries = connection.execute(text("SELECT id FROM journal_entries")).scalars().all()
            tables = connection.dialect.get_table_names(connection)
    finally:
        engine.dispose()
    assert old in entries
    assert "channel_sweeps" not in tables
