"""Database activities of a channel's sweep: what we booked for the day, and the posting
of each transfer the bank confirmed (with its fee check), each idempotent."""

from __future__ import annotations

from temporalio import activity

from channels.bank import ChannelTransfer
from db.engine import SessionFactory
from db.sweeps import booked_day, converted_fees, post_channel_sweep, realise_converted
from domain.sweeps import BookedDay, ChannelDay, SweepOutcome


class SweepRecords:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn
    def booked_day(self, day: ChannelDay) -> BookedDay:
        with self._sessions() as session:
            return booked_day(session, day.channel, day.day)

    @activity.defn
    def post_sweep(self, transfer: ChannelTransfer) -> SweepOutcome:
        """Post the transfer (once) and set the channel's fee beside ours for its day."""
        with self._sessions() as session, session.begin():
            unrealised: list[str] = []
            if transfer.conversion is not None:
                unrealised = realise_converted(
                    session, transfer.transfer_id, transfer.conversion.orders
                )
            posted = post_channel_sweep(
                session,
                transfer.transfer_id,
                transfer.channel,
                transfer.currency,
                day=transfer.day,
                gross=transfer.gross,
                net=transfer.net,
                refunds=transfer.refunds,
            )
            booked = booked_day(session, transfer.channel, transfer.day)
        # Like for like: a converted transfer states the channel's fees in its currency,
        # converted from the currency it took at its rate; ours are converted the same way.
        conversion = transfer.conversion
        booked_fees = booked.fees.get(transfer.taken_currency, 0)
        if conversion is not None:
            booked_fees = converted_fees(
                booked_fees, conversion.source_currency, transfer.currency, conversion.rate
            )
        return SweepOutcome(
            transfer_id=transfer.transfer_id,
            currency=transfer.currency,
            taken_currency=transfer.taken_currency,
            gross=transfer.gross,
            fees=transfer.gross - transfer.refunds - transfer.net,  # what it kept
            refunds=transfer.refunds,
            net=transfer.net,
            booked_fees=booked_fees,
            newly_posted=posted,
            unrealised_orders=unrealised,
        )
