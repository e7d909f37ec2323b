"""Reading the gateway's form-encoded requests (`amount=1999&metadata[order_id]=...`).

A request names only parameters the endpoint knows, each once; anything else
is refused with the parameter named (`param`), as the gateway does. The
sandbox keeps only the metadata keys it maps onto its records, so any other
metadata key is refused too rather than silently dropped.

Bodies are parsed here with the standard library: `application/x-www-form-
urlencoded` needs nothing more, and the card page's forms reuse it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from fastapi import Request

from sandbox.card_errors import CardError

_URL = re.compile(r"^https?://\S+$")
_MAX_BODY = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The body's fields; a field given twice or a body we cannot read is a 400."""
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise CardError(400, "parameter_invalid", "The request body is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise CardError(400, "parameter_invalid", "The body is not a readable form.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise CardError(400, "parameter_invalid", f"{name} is given twice.", param=name)
        fields[name] = value
    return fields


class Params:
    """One request's fields, checked against the names its endpoint accepts."""

    def __init__(self, fields: dict[str, str], accepted: frozenset[str]) -> None:
        for name in fields:
            if name not in accepted:
                raise CardError(
                    400, "parameter_unknown", f"Received unknown parameter: {name}", param=name
                )
        self._fields = fields

    def text(self, name: str, *, required: bool = True, max_length: int = 500) -> str | None:
        value = self._fields.get(name)
        if value is None or value == "":
            if required:
                raise CardError(
                    400, "parameter_missing", f"Missing required param: {name}.", param=name
                )
            return None
        if len(value) > max_length:
            raise _invalid(name, f"{name} is longer than {max_length} characters.")
        return value

    def required(self, name: str, *, max_length: int = 500) -> str:
        value = self.text(name, required=True, max_length=max_length)
        assert value is not None  # text() raises for a missing required param
        return value

    def positive_integer(self, name: str, *, required: bool = True) -> int | None:
        value = self.text(name, required=required, max_length=18)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit() or int(value) <= 0:
            raise CardError(
                400,
                "parameter_invalid_integer",
                f"{name} must be a positive integer (minor units).",
                param=name,
            )
        return int(value)

    def url(self, name: str, *, required: bool = True) -> str | None:
        value = self.text(name, required=required, max_length=2048)
        if value is not None and not _URL.match(value):
            raise _invalid(name, f"{name} must be an http(s) URL.")
        return value

    def matching(self, name: str, pattern: str, *, hint: str) -> str:
        value = self.required(name)
        if not re.fullmatch(pattern, value):
            raise _invalid(name, f"{name} must be {hint}.")
        return value


def _invalid(name: str, message: str) -> CardError:
    return CardError(400, "parameter_invalid_string", message, param=name)
