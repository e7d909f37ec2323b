"""The system under test: Temporal, the sandbox, the worker and the API, as `make run`
starts them (stack.py), on free ports with the test suite's speeds (tests/conftest.py).

Temporal keeps its state in a SQLite file, so that it survives being killed. The run
kills a process with SIGKILL and starts it again; a process that dies on its own is
noticed by `revive`, counted and started again too.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import stack
from sandbox.credentials import generate_credentials

SERVICES = ("temporal", "sandbox", "worker", "api")
HEALTH_TIMEOUT_S = 60.0


def system_env(work: Path, database_url: str) -> dict[str, str]:
    """Every setting the processes get: free ports, fresh keys, test-speed timers."""
    api_port, sandbox_port = stack.free_port(), stack.free_port()
    return {
        **generate_credentials(),
        **stack.generate_platform_secrets(),
        "PAYSAGA_DATABASE_URL": database_url,
        "PAYSAGA_TEMPORAL_ADDRESS": f"127.0.0.1:{stack.free_port()}",
        "PAYSAGA_TASK_QUEUE": f"chaos-{secrets.token_hex(4)}",
        "PAYSAGA_API_PORT": str(api_port),
        "PAYSAGA_API_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "PAYSAGA_SANDBOX_PORT": str(sandbox_port),
        "PAYSAGA_SANDBOX_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
        "PAYSAGA_WORKER_HEALTH_PORT": str(stack.free_port()),
        "PAYSAGA_SANDBOX_TIME_SCALE": "0.001",
        "PAYSAGA_SANDBOX_STORE_PATH": str(work / "sandbox.json"),
        "PAYSAGA_SANDBOX_PAYOUT_DELAY_MS": "50",
        "PAYSAGA_LOG_DIR": str(work),
        "PAYSAGA_ACCESS_TOKEN_SECONDS": "86400",  # one operator token for the whole run
        "PAYSAGA_AUTO_COMPLETE_SECONDS": "0",
        "PAYSAGA_MIN_AUTO_COMPLETE_SECONDS": "0",
        "PAYSAGA_MIN_PAYMENT_TIMEOUT_SECONDS": "1",
        "PAYSAGA_WORKFLOW_TASK_TIMEOUT_SECONDS": "2",
        "PAYSAGA_STICKY_QUEUE_TIMEOUT_SECONDS": "1",
        "PAYSAGA_POLL__PAYMENT_FIRST_MAX_MS": "1000",
        "PAYSAGA_POLL__REFUND_FIRST_MS": "1000",
        "PAYSAGA_POLL__PAYOUT_FIRST_MS": "1000",
        "PAYSAGA_LOG_FORMAT": "json",
    }


def service_kind(name: str) -> str:
    """ "worker-2" is a second worker, "api-2" a second API: the part before the dash."""
    return name.split("-", 1)[0]


class ChaosSystem:
    """The four services, each startable, killable and checked for health by name; more
    workers and API processes ("worker-2", "api-2", ...) start the same way on their own
    ports (the benchmark's scale-out case)."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.processes = stack.Stack(env=env)
        self.died_on_their_own: Counter[str] = Counter()
        self._api_ports = {"api": int(env["PAYSAGA_API_PORT"])}

    @property
    def api_url(self) -> str:
        return self.env["PAYSAGA_API_PUBLIC_URL"]

    @property
    def sandbox_url(self) -> str:
        return self.env["PAYSAGA_SANDBOX_BASE_URL"]

    @property
    def temporal_address(self) -> str:
        return self.env["PAYSAGA_TEMPORAL_ADDRESS"]

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def start(self, name: str) -> None:
        """Start `name` and wait until it is healthy."""
        self.processes.start(name, self._command(name), self.work / f"{name}.log")
        stack.wait_until(self._health(name), name, HEALTH_TIMEOUT_S, watch=None)

    def kill(self, name: str) -> None:
        self.processes.stop(name, kill=True)

    def stop_all(self) -> None:
        self.processes.stop()

    def revive(self) -> list[str]:
        """Start again every service that exited without our kill; the names restarted."""
        dead = [n for n, p in self.processes.processes if p.poll() is not None]
        for name in dead:
            self.died_on_their_own[name] += 1
            self.processes.stop(name)
            self.start(name)
        return dead

    def api_url_of(self, name: str) -> str:
        """The address of the API process `name` ("api", "api-2", ...)."""
        if name not in self._api_ports:
            self._api_ports[name] = stack.free_port()
        return f"http://127.0.0.1:{self._api_ports[name]}"

    def _command(self, name: str) -> list[str]:
        env = self.env
        kind = service_kind(name)
        if kind == "temporal":
            port = int(self.temporal_address.rsplit(":", 1)[1])
            return stack.temporal_command(port, None, str(self.work / "temporal.db"))
        if kind == "sandbox":
            port = int(env["PAYSAGA_SANDBOX_PORT"])
            return stack.uvicorn_command("sandbox.app:create_app", "127.0.0.1", port)
        if kind == "worker" and name != "worker":  # its own health port; `env` execs
            health = f"PAYSAGA_WORKER_HEALTH_PORT={stack.free_port()}"
            return ["env", health, *stack.worker_command()]
        if kind == "worker":
            return stack.worker_command()
        port = int(self.api_url_of(name).rsplit(":", 1)[1])
        return stack.uvicorn_command("api.app:create_app", "127.0.0.1", port)

    def _health(self, name: str) -> Callable[[], bool]:
        kind = service_kind(name)
        if kind == "temporal":
            port = int(self.temporal_address.rsplit(":", 1)[1])
            return lambda: stack.port_open(port)
        if kind == "sandbox":
            return lambda: stack.http_ok(f"{self.sandbox_url}/healthz")
        if kind == "worker":
            queue = self.env["PAYSAGA_TASK_QUEUE"]
            return lambda: stack.worker_polling(self.temporal_address, "default", queue)
        return lambda: stack.http_ok(f"{self.api_url_of(name)}/healthz")
