"""The card gateway, simulated at /card: a PaymentIntents-style API, a hosted card
page and signed webhooks.

    card_api.py          /card/v1/...: intents, refunds, search (bearer auth, form bodies)
    card_reports.py      /card/v1/reporting, /card/v1/files: the day's balance transactions
    card_page.py         /card/pay/{intent}: the buyer's card form and 3-D Secure challenge
    card_notify.py       webhooks: the gateway's events, signed, on its retry schedule
    card_views.py        the core's records as the gateway's objects (API and webhooks alike)
    card_memory.py       3-D Secure in progress, failure reasons, return URLs (in memory)
    card_idempotency.py  Idempotency-Key replay
    card_errors.py       the gateway's error shape
    card_forms.py        reading form-encoded requests
    card_testcards.py    the test cards, and checking what a buyer typed
    card_html.py         the page's HTML

The wire models are shared with the adapter (`channels.card.wire`).
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox import card_api, card_page, card_reports
from sandbox.card_memory import MEMORY
from sandbox.card_notify import CardNotifications
from sandbox.notifier import NotifyProtocol
from settings import Settings

router = APIRouter(prefix="/card", tags=["card"])
router.include_router(card_api.router)
router.include_router(card_page.router)
router.include_router(card_reports.router)


def notifications(settings: Settings) -> NotifyProtocol:
    secret = settings.card.webhook_secret.get_secret_value().encode()
    return CardNotifications(secret, settings.sandbox_base_url, MEMORY)
