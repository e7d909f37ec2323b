"""A worker with a bug in a step after payment: started with this folder first on its
PYTHONPATH (tests/workflows/test_bug_waits_for_fix.py), Python imports this module before
worker.py, and telling the parties of a paid order (`notify_paid`, as
activities.order_records calls it: in `fulfil_payment`'s second transaction, and in
`notify_parties` of older sagas) raises a plain ValueError, as a bug would. The payment
and its settlement are committed before it, in the step's first transaction.

Each call is appended to the file BUGGY_WORKER_CALLS names, so the test can see the step
being retried.
"""

from __future__ import annotations

import os
from typing import Any

from activities import order_records


def notify_paid(session: Any, order: Any) -> str | None:
    with open(os.environ["BUGGY_WORKER_CALLS"], "a") as calls:
        calls.write(f"{order.id}\n")
    raise ValueError("a bug in telling the parties of a payment")


order_records.notify_paid = notify_paid  # type: ignore[attr-defined]  # the name its steps call
