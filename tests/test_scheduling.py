"""The test scheduler of `make test` (tests/scheduling.py), driven by hand with fake workers:
each worker keeps to one backend, slow modules go out first, and every test runs once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.scheduling import BackendAffinityScheduling, backend_of


@pytest.mark.parametrize(
    ("nodeid", "backend"),
    [
        ("tests/api/test_orders.py::test_x[sqlite]", "sqlite"),
        ("tests/api/test_orders.py::test_x[postgresql-nul-key-name]", "postgresql"),
        ("tests/api/test_contract.py::test_c[POST /v1/a-b][anonymous-sqlite]", "sqlite"),
        ("tests/domain/test_money.py::test_y", None),
        ("tests/domain/test_money.py::test_y[mysqlite-3]", None),
        ("tests/db/test_migrate.py::test_z[sqlite-postgresql]", None),  # both: no affinity
    ],
    ids=["alone", "among-more", "two-brackets", "none", "in-a-word", "two-backends"],
)
def test_the_backend_is_read_from_the_test_parameters(nodeid: str, backend: str | None) -> None:
    assert backend_of(nodeid) == backend


@dataclass(eq=False)
class FakeWorker:
    """What the scheduler calls on an xdist worker; it records what it was sent."""

    name: str
    scheduler: BackendAffinityScheduling
    shutting_down: bool = False
    queue: list[int] = field(default_factory=list)
    steal_asked: list[int] | None = None

    @property
    def gateway(self) -> Any:  # xdist names a worker by its execnet gateway's id
        return type("Gateway", (), {"id": self.name})

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue.extend(indices)

    def send_steal(self, indices: list[int]) -> None:
        self.steal_asked = indices

    def answer_steal(self) -> None:
        """Give back what it has not begun, as a worker does (its first test is running)."""
        if self.steal_asked is not None:
            given = [index for index in self.steal_asked if index in self.queue[1:]]
            self.queue, self.steal_asked = [i for i in self.queue if i not in given], None
            self.scheduler.remove_pending_tests_from_node(self, given)

    def shutdown(self) -> None:
        self.shutting_down = True


class FakeConfig:
    def getvalue(self, name: str) -> Any:
        return {"tx": ["3*popen"]}[name]


COLLECTION = (
    [f"tests/api/test_a.py::test_{i}[sqlite]" for i in range(40)]
    + [f"tests/api/test_a.py::test_{i}[postgresql]" for i in range(30)]
    + [f"tests/domain/test_d.py::test_{i}" for i in range(50)]
    + [
        "tests/db/test_ledger_stateful.py::test_model[sqlite]",
        "tests/db/test_ledger_stateful.py::test_model[postgresql]",
        "tests/test_stack.py::test_start",
        "tests/test_manage.py::test_operator",
    ]
)


def _run(scheduler: BackendAffinityScheduling, workers: list[FakeWorker]) -> dict[str, list[str]]:
    """Every worker runs its queue one test at a time, in turn, until all is handed out."""
    ran: dict[str, list[str]] = {worker.name: [] for worker in workers}
    while not scheduler.tests_finished:
        for worker in workers:
            if len(worker.queue) > 1 or (worker.queue and worker.shutting_down):
                index = worker.queue.pop(0)
                ran[worker.name].append(COLLECTION[index])
                scheduler.mark_test_complete(worker, index)
            worker.answer_steal()
    for worker in workers:  # xdist now shuts the workers down: each runs its last test
        ran[worker.name] += [COLLECTION[index] for index in worker.queue]
    return ran


def test_each_worker_keeps_to_one_backend_and_every_test_runs_once() -> None:
    scheduler = BackendAffinityScheduling(FakeConfig())  # type: ignore[arg-type]
    workers = [FakeWorker(f"gw{i}", scheduler) for i in range(3)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()

    first = {worker.name: COLLECTION[worker.queue[0]] for worker in workers}
    ran = _run(scheduler, workers)

    assert sorted(test for tests in ran.values() for test in tests) == sorted(COLLECTION)
    backends = {name: {backend_of(test) for test in tests} - {None} for name, tests in ran.items()}
    assert backends == {"gw0": {"sqlite"}, "gw1": {"postgresql"}, "gw2": {"sqlite"}}
    assert first["gw0"] == "tests/db/test_ledger_stateful.py::test_model[sqlite]"
    assert first["gw1"] == "tests/db/test_ledger_stateful.py::test_model[postgresql]"
    slow_modules_without_a_backend = (
        "tests/test_stack.py::test_start",
        "tests/test_manage.py::test_operator",
    )
    assert first["gw2"] in slow_modules_without_a_backend
