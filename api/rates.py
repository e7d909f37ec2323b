"""Rates (a commission, a percentage off) come as JSON strings, "0.05", never as numbers.

A JSON number reaches Python as a float, a binary fraction: 0.1 is held as
0.1000000000000000055511151231257827, and a caller's own JSON encoder may have rounded
it already. A decimal string keeps exactly the digits the caller wrote, so a rate is
taken only as one. Integers are refused too: one form for every rate, and a client
that sends 0 today does not send 0.05 as a float tomorrow.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


def _decimal_string(value: object) -> object:
    if isinstance(value, str | Decimal):  # Decimal: built in Python, exact as well
        return value
    raise PydanticCustomError(
        "decimal_string", 'a rate is a decimal string such as "0.05", not a JSON number'
    )


# Validated as a Decimal after the check (bounds and digits come from each field).
DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    WithJsonSchema({"type": "string", "format": "decimal", "examples": ["0.05"]}),
]
