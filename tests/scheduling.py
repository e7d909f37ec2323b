"""Which test process runs which test under `make test` (pytest-xdist's work stealing, with
each worker kept to one database backend's running system).

A test's running system (tests/conftest.py: Temporal worker, API and sandbox processes)
is per backend and per test process, and costs about 10 s of CPU to start. Plain work
stealing hands out the collection in three equal slices and then moves the tail of one
worker's queue to another: a worker may end up starting both backends' systems for a
few tests. Here tests are handed out a batch at a time, as a worker runs low, and each
worker takes first what needs no system it lacks:

1. the modules known to run long (`SLOW_MODULES`), so none of them is left for the end;
2. tests on the worker's own backend; 3. tests on no backend; 4. any other backend.

Batches shrink as the run goes on (a share of what is left), so the last tests spread
evenly; when nothing is left to hand out, an idle worker steals from the longest queue
as in plain work stealing. Which backend a test is on is read from its id (`[sqlite-...]`):
a wrong guess costs time, never a result.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
from xdist.remote import Producer  # type: ignore[import-untyped]
from xdist.scheduler import WorkStealingScheduling  # type: ignore[import-untyped]
from xdist.workermanage import WorkerController  # type: ignore[import-untyped]

BACKENDS = ("sqlite", "postgresql")  # as tests/conftest.py names them in test ids

# Modules with tests of a minute or more under load (a Hypothesis state machine, every
# route for every role, migrations up and down, processes started from scratch).
SLOW_MODULES = (
    "tests/db/test_ledger_stateful.py",
    "tests/api/test_access_matrix.py",
    "tests/db/test_migrations.py",
    "tests/test_stack.py",
    "tests/test_manage.py",
    "tests/metrics/test_rules.py",
    "tests/test_files_at_rest.py",
    "tests/db/test_staff_sessions_migration.py",
    "tests/db/test_account_security_migration.py",
    "tests/api/test_buyer_journey.py",
    "tests/channels/test_bank.py",
    "tests/test_restarts.py",
    "tests/test_bench.py",
    "tests/workflows/test_bug_waits_for_fix.py",
    "tests/workflows/test_settlement_retried_task.py",
)

# Send more when a worker has fewer than this many queued: it runs one test only once it
# knows the next (the teardown between them depends on it).
MIN_PENDING = 2
# A worker starts another backend's system only for at least this many of its tests (or
# when no running worker has that system): ten seconds of CPU for a test or two would not pay.
FOREIGN_MINIMUM = 8
_PARAM_SEPARATORS = re.compile(r"\]\[|-")


def backend_of(nodeid: str) -> str | None:
    """The backend among a test's parameters (`test_x[POST /v1/x][anonymous-sqlite]`)."""
    name = nodeid.rpartition("::")[2]
    params = name.partition("[")[2].removesuffix("]")
    found = set(_PARAM_SEPARATORS.split(params)) & set(BACKENDS) if params else set()
    return found.pop() if len(found) == 1 else None


def is_slow(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0] in SLOW_MODULES


class BackendAffinityScheduling(WorkStealingScheduling):  # type: ignore[misc]
    """Work stealing whose handouts keep each worker to its backend (see the module doc)."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.collection: list[str] | None = None
        self.backends: dict[WorkerController, list[str]] = {}  # the systems a worker has
        self.backend_at: list[str | None] = []  # by collection index
        self.slow_at: list[bool] = []

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            self.check_schedule()
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        self.backend_at = [backend_of(nodeid) for nodeid in collection]
        self.slow_at = [is_slow(nodeid) for nodeid in collection]
        self.pending[:] = range(len(collection))
        self._assign_backends()
        self.check_schedule()

    def _assign_backends(self) -> None:
        """Each worker in turn takes the backend with the most tests per worker taking it."""
        counts = Counter(backend for backend in self.backend_at if backend)
        workers = Counter[str]()
        for node in self.node2pending:
            if not counts:
                self.backends[node] = []
                continue
            best = max(counts, key=lambda backend: counts[backend] / (workers[backend] + 1))
            workers[best] += 1
            self.backends[node] = [best]

    def check_schedule(self) -> None:
        for node, pending in list(self.node2pending.items()):
            low = self.pending and not node.shutting_down and len(pending) < MIN_PENDING
            if low and not self._send_batch(node):
                node.shutdown()  # it runs its last test; the rest wait for their systems
        if not self.pending:
            super().check_schedule()  # steal from the longest queue, or end idle workers

    def _worth_starting(self, own: list[str], backend: str) -> bool:
        waiting = sum(1 for index in self.pending if self.backend_at[index] == backend)
        started = any(
            backend in self.backends.get(node, [])
            for node in self.node2pending
            if not node.shutting_down
        )
        return backend in own or waiting >= FOREIGN_MINIMUM or not started

    def _rank(self, own: list[str], index: int) -> int:
        """0 a slow test this worker can run now, 1 its backend's, 2 no backend's, 3... others'."""
        backend = self.backend_at[index]
        if (backend is None or backend in own) and self.slow_at[index]:
            return 0
        if backend is None:
            return 2
        return 1 if backend in own else 3 + BACKENDS.index(backend)

    def _send_batch(self, node: WorkerController) -> bool:
        """One slow module (the first this worker can run, if any left), then a share of
        what is left, best ranked first: slow modules spread over the workers."""
        assert self.collection is not None
        size = max(MIN_PENDING, math.ceil(len(self.pending) / (4 * len(self.node2pending))))
        own = self.backends.setdefault(node, [])
        ranked = sorted(self.pending, key=lambda index: (self._rank(own, index), index))
        slow = [index for index in ranked if self._rank(own, index) == 0]
        module = self.collection[slow[0]].split("::", 1)[0] if slow else None
        chosen = [index for index in slow if self.collection[index].startswith(f"{module}::")]
        worth = {b: self._worth_starting(own, b) for b in BACKENDS}
        rest = [i for i in ranked if self._rank(own, i) > 0 and worth.get(self.backend_at[i], True)]
        chosen += rest[:size]
        if not chosen:
            return False
        for index in chosen:
            backend = self.backend_at[index]
            if backend is not None and backend not in own:
                own.append(backend)  # the worker starts that system now: keep it busy
        taken = set(chosen)
        self.pending[:] = [index for index in self.pending if index not in taken]
        self.node2pending[node].extend(chosen)
        node.send_runtest_some(chosen)
        return True
