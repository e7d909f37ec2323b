"""The card gateway, simulated at /card (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

from channels.sandbox.notifier import NotifyProtocol
from settings import Settings

router = APIRouter(prefix="/card", tags=["card"])


def notifications(settings: Settings) -> NotifyProtocol:
    raise NotImplementedError
