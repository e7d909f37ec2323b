"""What route handlers receive: settings, database sessions, the Temporal client, channels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from temporalio.client import Client

from api.auth.rate_limit import Throttle
from api.order_watch import StatusWatch
from channels.bank import BankTransferAdapter
from channels.base import ChannelAdapter
from db.engine import SessionFactory
from db.secret_box import SecretBox
from metrics.edge import ApiMetrics
from settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: SessionFactory  # for writing (and reading what is about to be written)
    reads: SessionFactory  # for answers that only read: no write lock on SQLite
    temporal: Client
    channels: dict[str, ChannelAdapter]
    bank: BankTransferAdapter
    throttle: Throttle
    secret_box: SecretBox
    metrics: ApiMetrics
    order_watch: StatusWatch  # requests waiting for an order's status to change
    checkout_watch: StatusWatch  # the hosted checkout's pages waiting for their order


async def get_context(request: Request) -> AppContext:
    # `async` though it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    # pool, a thread hop on every request for one attribute read.
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]
