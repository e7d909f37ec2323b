"""The one check every route that stores a merchant's webhook URL makes first.

`domain.webhook_targets` judges the URL as written (scheme, host literal, internal
names); the worker checks again after DNS on every delivery, since a name's
addresses can change after it was accepted here.
"""

from __future__ import annotations

from pydantic import HttpUrl

from api.errors import InvalidRequest
from domain.webhook_targets import url_refusal
from settings import Settings


def checked_webhook_url(url: HttpUrl | None, settings: Settings, param: str) -> str | None:
    """The URL to store (None: none), or a 400 naming `param` if no webhook may go there."""
    if url is None:
        return None
    text = str(url)
    refusal = url_refusal(text, allow_private=settings.webhook_allow_private_targets)
    if refusal is not None:
        raise InvalidRequest(refusal.code, refusal.message, param)
    return text
