"""Is a process ready to take work? What `/readyz` answers, on the API and the worker
alike: the database answers at the newest schema, Temporal answers (and, on the worker,
it is polling). 200 with each check's word, or 503 in the error shape naming what failed.

Each check returns a `Check` and never raises: a probe must get an answer, not a 500.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, text
from temporalio.client import Client

from api.errors import error_body
from db.migrate import schema_at_head

PROBE_TIMEOUT = timedelta(seconds=2)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = "ok"


async def database_check(engine: Engine) -> Check:
    def probe() -> Check:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            if not schema_at_head(connection):
                return Check("database", False, "the schema is not at the newest migration")
        return Check("database", True)

    try:
        return await asyncio.wait_for(asyncio.to_thread(probe), PROBE_TIMEOUT.total_seconds())
    except Exception as error:  # any failure is an answer: not ready
        return Check("database", False, f"unreachable: {type(error).__name__}")


async def temporal_check(client: Client) -> Check:
    try:
        healthy = await client.service_client.check_health(timeout=PROBE_TIMEOUT)
    except Exception as error:
        return Check("temporal", False, f"unreachable: {type(error).__name__}")
    return Check("temporal", healthy, "ok" if healthy else "not serving")


def readiness_answer(checks: list[Check]) -> tuple[int, dict[str, object]]:
    """(HTTP status, body) for these checks."""
    failed = [check for check in checks if not check.ok]
    if not failed:
        return 200, {"status": "ready", "checks": {check.name: check.detail for check in checks}}
    message = "; ".join(f"{check.name}: {check.detail}" for check in failed)
    return 503, error_body("api_error", "not_ready", message, None)
