"""Run the sandbox channel for real, and a real HTTP server to receive its notifications.

The sandbox is started once per session as a uvicorn subprocess with fresh
random secrets; the receiver (`tests.receiver`, a fixture of `tests/conftest.py`)
is a tiny Starlette app in a background thread.
Each test gets its own order id and its own inbox (a path on the receiver),
so tests never see each other's payments or notifications. A test that
restarts the sandbox gets one of its own (`restartable_sandbox`), which
remembers to a JSON file.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

import stack
from channels.bank import BankTransferAdapter
from channels.base import ChannelAdapter, ChannelName
from channels.registry import build_bank, build_channels
from sandbox.credentials import generate_credentials
from settings import Settings
from tests.receiver import Inbox as Inbox  # these three re-exported for the channels' tests
from tests.receiver import ReceivedRequest as ReceivedRequest
from tests.receiver import Receiver as Receiver
from tests.support import http_client, settings_from_env

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 20.0
# stack.free_port draws from 20000-32767: none of the ports a developer's stack uses (7233,
# 8000, 8100, ...), and none that an outgoing connection's local end may take meanwhile.
free_port = stack.free_port


# The channels' notify retry schedules run this much faster than real time here:
# Alipay's first retry (4 minutes) comes after 24 ms, WeChat Pay's (15 s) after 1.5 ms.
TIME_SCALE = 0.0001
# One set for the session (RSA keys take a while), with the platform's own keys.
_CREDENTIALS = {**generate_credentials(), **stack.generate_platform_secrets()}
# What the sandbox's test controls (/control/...) want: its API key.
CONTROL_HEADERS = {"Authorization": f"Bearer {_CREDENTIALS['PAYSAGA_SANDBOX_API_KEY']}"}


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    credentials: dict[str, str]  # every channel's key material, both halves
    time_scale: float = TIME_SCALE

    @property
    def api_key(self) -> str:
        return self.credentials["PAYSAGA_SANDBOX_API_KEY"]

    @property
    def webhook_secret(self) -> bytes:
        return self.credentials["PAYSAGA_SANDBOX_WEBHOOK_SECRET"].encode()

    def env(self) -> dict[str, str]:
        return {
            **self.credentials,
            "PAYSAGA_SANDBOX_BASE_URL": self.base_url,
            "PAYSAGA_SANDBOX_TIME_SCALE": str(self.time_scale),
            "PAYSAGA_SANDBOX_PAYOUT_DELAY_MS": "50",
        }

    def settings(self) -> Settings:
        return settings_from_env(self.env())


def _new_sandbox(time_scale: float = TIME_SCALE) -> RunningSandbox:
    return RunningSandbox(f"http://127.0.0.1:{free_port()}", _CREDENTIALS, time_scale)


def _start_sandbox(
    running: RunningSandbox, store_path: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start the sandbox as a subprocess and return once it answers /healthz."""
    env = {**os.environ, **running.env(), "PAYSAGA_SANDBOX_STORE_PATH": store_path}
    port = running.base_url.rsplit(":", 1)[1]
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "sandbox.app:create_app",
        "--host", "127.0.0.1", "--port", port,
    ]  # fmt: skip
    with log_path.open("ab") as log:  # the child keeps its own handle on the log
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(running.base_url, process, log_path)
    except BaseException:
        _stop_sandbox(process)
        raise
    return process


def _stop_sandbox(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = _new_sandbox()
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    process = _start_sandbox(running, "", log_path)
    try:
        yield running
    finally:
        _stop_sandbox(process)


@dataclass
class RestartableSandbox:
    """A sandbox of the test's own that remembers to `store_path`, and can be restarted."""

    running: RunningSandbox
    store_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = _start_sandbox(self.running, str(self.store_path), self.log_path)

    def stop(self) -> None:
        if self.process is not None:
            _stop_sandbox(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def crash(self) -> None:
        """Kill it (SIGKILL): nothing it held only in memory survives, as at a real crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def restartable_sandbox(tmp_path: Path) -> Iterator[RestartableSandbox]:
    sandbox = RestartableSandbox(_new_sandbox(), tmp_path / "sandbox.json", tmp_path / "log")
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sandbox exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if stack.http_ok(f"{base_url}/healthz"):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # poll interval, not a wait for state
    pytest.fail(f"sandbox not healthy within {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()}")


@pytest.fixture
def inbox(receiver: Receiver) -> Inbox:
    return receiver.inbox()


@pytest.fixture
def order_id() -> str:
    return f"ord_{secrets.token_hex(8)}"


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout=5) as client:
        yield client


@pytest.fixture
def channels(sandbox: RunningSandbox, client: httpx.AsyncClient) -> dict[str, ChannelAdapter]:
    return build_channels(sandbox.settings(), client)


@pytest.fixture
def alipay(channels: dict[ChannelName, ChannelAdapter]) -> ChannelAdapter:
    return channels[ChannelName.ALIPAY]


@pytest.fixture
def bank(sandbox: RunningSandbox, client: httpx.AsyncClient) -> BankTransferAdapter:
    return build_bank(sandbox.settings(), client)


class Control:
    """The sandbox's test controls, as a test would press them."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self.base_url = base_url
        self._headers = CONTROL_HEADERS  # every sandbox here has the session's credentials

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        url = f"{self.base_url}/control{path}"
        return await self._client.post(url, json=body, headers=self._headers)

    async def pay(self, order_id: str, **instruction: Any) -> dict[str, Any]:
        return await self._ok(self.post(f"/payments/{order_id}/pay", instruction or None))

    async def decline(self, order_id: str) -> dict[str, Any]:
        return await self._ok(self.post(f"/payments/{order_id}/decline"))

    async def fail_api(self, order_id: str, times: int) -> None:
        await self._ok(self.post(f"/faults/{order_id}", {"api_failures": times}))

    async def refund_behaviour(self, order_id: str, mode: str) -> None:
        await self._ok(self.post(f"/refund-behaviour/{order_id}", {"mode": mode}))

    async def complete_refund(self, refund_id: str) -> dict[str, Any]:
        return await self._ok(self.post(f"/refunds/{refund_id}/complete"))

    async def deliveries(self, order_id: str) -> list[dict[str, Any]]:
        response = await self._client.get(
            f"{self.base_url}/control/payments/{order_id}/deliveries", headers=self._headers
        )
        response.raise_for_status()
        deliveries: list[dict[str, Any]] = response.json()
        return deliveries

    @staticmethod
    async def _ok(pending: Awaitable[httpx.Response]) -> dict[str, Any]:
        response = await pending
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def control(sandbox: RunningSandbox, client: httpx.AsyncClient) -> Control:
    return Control(client, sandbox.base_url)
