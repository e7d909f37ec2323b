"""A worker whose settlement run fails its workflow task right after its page is prepared:
started with this folder first on its PYTHONPATH (tests/workflows/test_settlement_retried_task.py),
Python imports this module before worker.py, and `SettlementRunWorkflow._begin_page` (the
run's first step after the page's commit) raises a plain RuntimeError, as a bug or a
worker lost mid-task would leave it. Workflows run unsandboxed in the worker, so the
stand-in is what the run calls. Each call is appended to the file FAILING_RUN_CALLS names.
"""

from __future__ import annotations

import os
from datetime import date

from workflows.settlement import SettlementRunWorkflow


def _begin_page(self: SettlementRunWorkflow, day: date, remaining: int) -> None:
    with open(os.environ["FAILING_RUN_CALLS"], "a") as calls:
        calls.write("begin_page\n")
    raise RuntimeError("the run's workflow task fails after its page's commit")


SettlementRunWorkflow._begin_page = _begin_page  # type: ignore[method-assign]
