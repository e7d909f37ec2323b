"""WeChat Pay API v3, simulated at /wechatpay (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

from channels.sandbox.notifier import NotifyProtocol
from settings import Settings

router = APIRouter(prefix="/wechatpay", tags=["wechatpay"])


def notifications(settings: Settings) -> NotifyProtocol:
    raise NotImplementedError
