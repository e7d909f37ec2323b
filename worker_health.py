"""The worker's own `/healthz` and `/readyz`, on `worker_health_port` (0: none).

Alive while the process answers; ready while it polls its task queue (started and not
shutting down), the database answers at the newest schema and Temporal answers. The
server runs on the worker's event loop and leaves SIGTERM and SIGINT to the worker,
which stops polling and finishes its running activities before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.worker import Worker

from api.readiness import Check, database_check, readiness_answer, temporal_check


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the worker handles the signals: it must drain before the process ends


def health_app(worker: Worker, engine: Engine, client: Client) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        polling = Check("polling", worker.is_running, "ok" if worker.is_running else "stopped")
        checks = await asyncio.gather(database_check(engine), temporal_check(client))
        status, body = readiness_answer([polling, *checks])
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


@contextlib.asynccontextmanager
async def serving_health(app: Starlette, host: str, port: int) -> AsyncIterator[None]:
    """Serve `app` on host:port for as long as the block runs (nothing when port is 0)."""
    if port == 0:
        yield
        return
    server = _Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", server_header=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.should_exit = True
        await task
