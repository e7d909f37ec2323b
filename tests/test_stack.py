"""Starting the system when something is wrong: `make run` says what, at once, and stops.

Each test runs real processes (`python stack.py`, or one service through `stack.Stack`) on
free ports, with its own directory for every file they write.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import stack

# A health check gives up after 30 s: a failure reported sooner was noticed as it happened.
# On an idle machine a taken port fails in about 1 s (a Python start); the margin is for a
# machine busy with other tests.
PROMPTLY = 25.0
# From a child's last words to the report: noticing takes 0.1 s, stopping the others (Temporal's
# shutdown the longest) about 2 s on an idle machine.
NOTICED = 10.0


def stack_env(tmp_path: Path, credentials: dict[str, str]) -> dict[str, str]:
    """The environment `make run` would see in a fresh checkout, on free ports, writing
    only under `tmp_path`; every secret is set, so no var/secrets.env is written."""
    temporal, ui, api, sandbox, worker_health = (stack.free_port() for _ in range(5))
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PAYSAGA_") and name != "DATABASE_URL"
    }
    return {
        **inherited,
        **credentials,
        "PAYSAGA_DATABASE_URL": f"sqlite:///{tmp_path / 'paysaga.db'}",
        "PAYSAGA_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
        "PAYSAGA_TEMPORAL_UI_PORT": str(ui),
        "PAYSAGA_TEMPORAL_DB_PATH": str(tmp_path / "temporal.db"),
        "PAYSAGA_TASK_QUEUE": f"orders-{secrets.token_hex(4)}",
        "PAYSAGA_API_PORT": str(api),
        "PAYSAGA_API_PUBLIC_URL": f"http://127.0.0.1:{api}",
        "PAYSAGA_SANDBOX_PORT": str(sandbox),
        "PAYSAGA_SANDBOX_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "PAYSAGA_SANDBOX_STORE_PATH": str(tmp_path / "sandbox.json"),
        "PAYSAGA_WORKER_HEALTH_PORT": str(worker_health),
    }


@dataclass
class Run:
    """What `make run` did: its exit status, and each line it printed (its output and its
    errors together) with the moment the line came."""

    status: int
    began: float
    lines: list[tuple[float, str]]

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def when(self, fragment: str) -> float:
        """Seconds from the start to the first line holding `fragment`."""
        return next(at for at, line in self.lines if fragment in line) - self.began

    def since(self, fragment: str) -> str:
        """Everything printed from the first line holding `fragment` on."""
        return self.output[self.output.index(fragment) :]


def run_stack(env: dict[str, str], cwd: Path) -> Run:
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(stack.ROOT / "stack.py")],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)  # a hang fails the test, not the session
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = [(time.monotonic(), line.rstrip("\n")) for line in process.stdout]
        return Run(process.wait(), began, lines)
    finally:
        watchdog.cancel()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_taken_api_port_is_named_with_its_setting_before_anything_starts(
    tmp_path: Path, channel_credentials: dict[str, str], taken_port: int
) -> None:
    env = stack_env(tmp_path, channel_credentials)
    env["PAYSAGA_API_PORT"] = str(taken_port)
    env["PAYSAGA_API_PUBLIC_URL"] = f"http://127.0.0.1:{taken_port}"

    run = run_stack(env, tmp_path)

    assert run.status == 1, run.output
    assert run.when("paysaga could not start:") < PROMPTLY
    reason = run.since("paysaga could not start:")
    assert f"port {taken_port} (PAYSAGA_API_PORT) is already in use" in reason
    assert "set PAYSAGA_API_PORT (and PAYSAGA_API_PUBLIC_URL to match)" in reason
    assert "Traceback" not in run.output
    temporal_port = int(env["PAYSAGA_TEMPORAL_ADDRESS"].rsplit(":", 1)[1])
    assert not stack.port_open(temporal_port)  # nothing was started
    assert not (tmp_path / "temporal.db").exists()


def test_a_service_that_exits_at_start_is_reported_with_its_code_and_last_lines(
    tmp_path: Path, channel_credentials: dict[str, str]
) -> None:
    env = stack_env(tmp_path, channel_credentials)
    env["PAYSAGA_TEMPORAL_DB_PATH"] = str(tmp_path)  # a directory: Temporal cannot open it

    run = run_stack(env, tmp_path)

    assert run.status == 1, run.output
    # Its output is shown as it comes, each line headed with its name; then the reason.
    assert run.when("paysaga could not start:") - run.when("temporal | Error:") < NOTICED
    reason = run.since("paysaga could not start:")
    assert re.match(r"paysaga could not start: temporal exited with code \d+\. ", reason), reason
    assert "Its last lines of output:" in reason
    assert "unable to open database file" in reason  # Temporal's own words
    assert "Traceback" not in run.output
    assert "sandbox |" not in run.output and "api |" not in run.output  # nothing else started


def test_waiting_on_a_service_that_died_fails_at_once_with_its_log_tail(
    tmp_path: Path, channel_credentials: dict[str, str]
) -> None:
    env = stack_env(tmp_path, channel_credentials)
    env["PAYSAGA_ACCESS_TOKEN_SECONDS"] = "0"  # must be at least 1
    log = tmp_path / "api.log"
    log.write_text("an earlier run of the API said this\n")  # a restart appends to the log
    port = int(env["PAYSAGA_API_PORT"])
    processes = stack.Stack(env=env)
    processes.start("api", stack.uvicorn_command("api.app:create_app", "127.0.0.1", port), log)
    try:
        with pytest.raises(stack.ChildExited) as failure:
            stack.wait_until(
                lambda: stack.http_ok(f"http://127.0.0.1:{port}/healthz"), "api", watch=processes
            )
        noticed = time.time()
    finally:
        processes.stop()

    assert noticed - log.stat().st_mtime < NOTICED  # its last words were written just before
    assert failure.value.returncode == 1
    assert any("access_token_seconds" in line for line in failure.value.tail)
    assert not any("earlier run" in line for line in failure.value.tail)
    assert str(failure.value).startswith(
        f"api exited with code 1. Its last lines of output (all of it in {log}):"
    )


def test_sigterm_stops_a_stack_as_ctrl_c_does() -> None:
    """make run, make bench and make chaos turn SIGTERM into Ctrl-C's KeyboardInterrupt, so
    their stacks are stopped on the way out (bench and chaos left theirs running)."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        stack.stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
