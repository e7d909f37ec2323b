"""OrderWorkflow: one durable saga per order.

    record order + reserve coupon -> create payment at the channel
    -> await the channel (signal, or our own polling) -> record payment
    -> settle (split + ledger) -> notify buyer and merchant -> completed

Unpaid endings (timeout, decline, cancel) close the payment at the channel
first: if the buyer paid at the last moment the close fails and the order is
paid after all. After payment, a step that fails for good unwinds the
registered compensations in reverse (reverse the ledger, refund the buyer).
A payment the channel reports for an order that no longer waits for one is
refunded at once.

While the buyer has not paid, a modification (an update) re-prices the order,
closes its payment at the channel and issues the next attempt under its own
reference; the run loop applies it between signals, so it never interleaves
with a payment. A payment of a replaced attempt is never the order's: it is
given back like a late one.

An order placed without a channel waits for the buyer to choose one on the hosted
checkout (the choose_method update, applied by the run loop like a modification):
nothing is asked of any channel before. Switching to another method closes the open
attempt at its channel and opens the next attempt at the new one, under the next
reference; a payment that reaches the closed attempt is given back like a late one.

The saga's parts, each building on the one before:

    state.py          what it holds; recording a status, flagging, naming attempts
    refunds.py        its own refunds, and the late payments it gives back
    compensation.py   unwinding a paid order whose step was refused
    modifications.py  modifications and the buyer's choice of method
    payment_wait.py   creating the payment and waiting for the channel's word
    fulfilment.py     recording, settling, notifying, the receipt hold
    workflow.py       OrderWorkflow: run, and its signal/update/query handlers

Its decisions are pure and live in domain/: payment_outcome.py (what a notice or
a poll means), inbox.py (which notices are the order's), modifiability.py.
"""

from workflows.order.failures import StepFailed
from workflows.order.modifications import UNDERSCORE_REFERENCES
from workflows.order.payment_wait import POLL_SEES_CLOSED
from workflows.order.refunds import REFUND_CHILD
from workflows.order.state import signal_from_state
from workflows.order.workflow import OrderWorkflow

__all__ = [
    "POLL_SEES_CLOSED",
    "REFUND_CHILD",
    "UNDERSCORE_REFERENCES",
    "OrderWorkflow",
    "StepFailed",
    "signal_from_state",
]
