"""A worker with a bug in a step after payment: started with this folder first on its
PYTHONPATH (tests/workflows/test_bug_waits_for_fix.py), Python imports this module before
worker.py, and `OrderRecords.settle_order` raises a plain ValueError, as a bug would.

The stand-in keeps the activity's Temporal definition (functools.wraps copies the
function's __dict__, where `@activity.defn` put it), so the worker registers it under
the real name, and temporalio calls the bound stand-in. Each call is appended to the
file BUGGY_WORKER_CALLS names, so the test can see the step being retried.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from activities.order_records import OrderRecords

_settle_order = OrderRecords.settle_order


@functools.wraps(_settle_order)
def settle_order(self: OrderRecords, ref: Any) -> Any:
    with open(os.environ["BUGGY_WORKER_CALLS"], "a") as calls:
        calls.write(f"{ref.order_id}\n")
    raise ValueError("a bug in settle_order")


OrderRecords.settle_order = settle_order  # type: ignore[method-assign]
