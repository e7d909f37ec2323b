"""The API's own CPU per request, apart from the rest of the bench:
`python -m bench.api_cpu [OTHER_CHECKOUT]`.

On each of BENCH_DATABASES it starts the stack as the bench does (bench.stand), creates a
merchant and a few orders, then runs rounds of three phases against the API: reads of one
order (`GET /v1/orders/{id}`, what a buyer's page polls), reads of its payment attempts
(`/payments`), and creations (`POST /v1/orders`, each waiting for its saga's checkout).
It prints the API process's CPU per request in each phase (utime + stime from /proc).

With OTHER_CHECKOUT (a tree of other code: `git archive <commit> | tar -x -C DIR`) a second
API runs that code beside this one, on the same database, Temporal and worker, and every
round measures both, their order alternating: on a shared machine the ratio of the two
holds better than either figure alone.

Knobs: API_CPU_READS (400 of each kind per round), API_CPU_CREATES (40), API_CPU_ROUNDS (4),
API_CPU_AT_ONCE (5 requests in flight), API_CPU_OTHER_ENV (`NAME=value ...` for the other
API: a library tried beside), BENCH_PORTS (`low-high`: where the services listen),
API_CPU_PROFILE (a folder: after the rounds, one more of each phase on this tree's API under
py-spy, `API_CPU_PYSPY` or `py-spy` on the PATH, its stacks written there as collapsed text).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

import stack
from bench import cpu
from bench.config import from_env
from bench.figures import ms_per_item
from bench.orders import in_flight
from bench.stand import Stand, bench_database, new_merchant

READS = int(os.environ.get("API_CPU_READS", "400"))
CREATES = int(os.environ.get("API_CPU_CREATES", "40"))
ROUNDS = int(os.environ.get("API_CPU_ROUNDS", "4"))
AT_ONCE = int(os.environ.get("API_CPU_AT_ONCE", "5"))
OTHER_ENV = os.environ.get("API_CPU_OTHER_ENV", "")
PROFILE = os.environ.get("API_CPU_PROFILE")
PYSPY = os.environ.get("API_CPU_PYSPY", "py-spy")
PHASES = ("healthz", "read", "payments", "create")  # healthz: the edge alone, no database


def _order_body(merchant_id: str) -> dict[str, object]:
    return {
        "merchant_id": merchant_id,
        "channel": "alipay",
        "currency": "CNY",
        "lines": [{"sku": "tea", "name": "Tea", "quantity": 1, "unit_amount": 1999}],
    }


async def _create(api: httpx.AsyncClient, merchant_id: str) -> str:
    headers = {"Idempotency-Key": f"api-cpu-{secrets.token_hex(8)}"}
    answer = await api.post("/v1/orders", json=_order_body(merchant_id), headers=headers)
    for _ in range(20):  # 503: the saga was slow, and the same key joins it
        if answer.status_code != 503:
            break
        await asyncio.sleep(0.5)
        answer = await api.post("/v1/orders", json=_order_body(merchant_id), headers=headers)
    answer.raise_for_status()
    return str(answer.json()["id"])


def _start_other_api(stand: Stand, checkout: Path) -> None:
    """An API of `checkout`'s code beside ours (`env -C`: its modules, not ours)."""
    url = stand.system.api_url_of("api-other")
    port = int(url.rsplit(":", 1)[1])
    command = stack.uvicorn_command("api.app:create_app", "127.0.0.1", port)
    log = stand.system.work / "api-other.log"
    settings = OTHER_ENV.split()  # e.g. PYTHONPATH=... to try a library beside
    command = ["env", "-C", str(checkout), *settings, *command]
    stand.system.processes.start("api-other", command, log)
    stack.wait_until(lambda: stack.http_ok(f"{url}/healthz"), "api-other", 60)


Request = Callable[[], Awaitable[None]]


def _requests(api: httpx.AsyncClient, order_id: str, merchant_id: str) -> dict[str, Request]:
    """One request of each phase, to `api`."""

    async def healthz() -> None:
        (await api.get("/healthz")).raise_for_status()

    async def read() -> None:
        (await api.get(f"/v1/orders/{order_id}")).raise_for_status()

    async def payments() -> None:
        (await api.get(f"/v1/orders/{order_id}/payments")).raise_for_status()

    async def create() -> None:
        await _create(api, merchant_id)

    return {"healthz": healthz, "read": read, "payments": payments, "create": create}


async def _phase(pid: int, count: int, one: Request) -> float:
    """Milliseconds of the API's CPU per request over `count` of `one`."""
    before = cpu.tree_ticks(pid)
    await in_flight(count, AT_ONCE, one)
    return ms_per_item(cpu.tree_ticks(pid) - before, count)


async def _profiled(pid: int, out: Path, count: int, one: Request) -> None:
    """`count` of `one` with py-spy sampling the API while it holds the GIL (its stacks,
    collapsed, in `out`): a thread waiting for the GIL is not counted as working."""
    command = [PYSPY, "record", "--pid", str(pid), "--format", "raw", "--gil", "-r", "100"]
    spy = await asyncio.create_subprocess_exec(
        *command,
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)  # attached
    await in_flight(count, AT_ONCE, one)
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on an interrupt
    await spy.wait()


async def _measure(
    stand: Stand, names: list[str], database: str
) -> dict[str, dict[str, list[float]]]:
    headers = stand.operator_headers()
    apis = {name: stand.api_client(name, headers) for name in names}
    pids = stand.pids(names)
    figures: dict[str, dict[str, list[float]]] = {n: {p: [] for p in PHASES} for n in names}
    counts = {"healthz": READS, "read": READS, "payments": READS, "create": CREATES}
    try:
        merchant = await new_merchant(apis[names[0]])
        order_id = await _create(apis[names[0]], merchant)
        requests = {name: _requests(apis[name], order_id, merchant) for name in names}
        for name in names:  # warm-up: every route, lazily built parts built
            for _ in range(20):
                for one in requests[name].values():
                    await one()
        for number in range(ROUNDS):
            for phase in PHASES:  # each phase on both APIs back to back, in turn first
                turn = names if number % 2 == 0 else names[::-1]
                for name in turn:
                    value = await _phase(pids[name], counts[phase], requests[name][phase])
                    figures[name][phase].append(value)
            for name in names:
                done = ", ".join(f"{p} {figures[name][p][-1]:.2f}" for p in PHASES)
                say(f"  round {number + 1} {name}: {done} ms of CPU per request")
        if PROFILE:
            folder = Path(PROFILE)
            folder.mkdir(parents=True, exist_ok=True)
            for phase in PHASES:
                out = folder / f"{database}-{phase}.txt"
                await _profiled(pids["api"], out, counts[phase], requests["api"][phase])
            say(f"  profiles in {folder}")
    finally:
        for api in apis.values():
            await api.aclose()
    return figures


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the stack stops on a kill too
    ports = os.environ.get("BENCH_PORTS")
    if ports:
        low, _, high = ports.partition("-")
        stack._SERVICE_PORTS = range(int(low), int(high) + 1)
    other = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None
    config = from_env()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for database in config.databases:
        # Absolute: the other checkout's API runs in its own folder.
        work = Path("var/bench").resolve() / f"api-cpu-{stamp}" / database
        work.mkdir(parents=True, exist_ok=True)
        with bench_database(database, work, config.postgres_url) as url:
            stand = Stand(work, url)
            try:
                stand.system.start_all()
                names = ["api"]
                if other is not None:
                    _start_other_api(stand, other)
                    names.append("api-other")
                say(f"{database}: {ROUNDS} rounds of {READS} reads, {CREATES} creations")
                figures = asyncio.run(_measure(stand, names, database))
            finally:
                stand.stop()
        for name, phases in figures.items():
            medians = ", ".join(f"{p} {statistics.median(v):.2f}" for p, v in phases.items())
            say(f"{database} {name}: median ms of CPU per request: {medians}")
        if other is not None:  # round by round: both measured under the same load
            ratios = ", ".join(
                f"{p} {_median_ratio(figures['api'][p], figures['api-other'][p]):.2f}"
                for p in PHASES
            )
            say(f"{database}: this tree / the other, median of the rounds: {ratios}")


def _median_ratio(ours: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True) if b)


if __name__ == "__main__":
    main()
