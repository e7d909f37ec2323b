"""The test cards, and checking what a buyer typed.

    4242 4242 4242 4242   succeeds
    4000 0000 0000 3220   asks for 3-D Secure: the page shows a challenge
    4000 0000 0000 0002   is declined (card_declined)
    any other valid card  is declined too: this is a test gateway

A number must pass the Luhn check, the expiry (MM/YY or MM/YYYY) must not
have passed, and the CVC is 3 digits (4 for American Express). What a buyer
typed goes no further than `present`: it returns the outcome and a
`CardSummary` (brand, last four), never the number, expiry or CVC.
"""

from __future__ import annotations

import enum
import re
from datetime import date

from sandbox.card_memory import CardSummary

_EXPIRY = re.compile(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*")


class Outcome(enum.Enum):
    SUCCEED = "succeed"
    AUTHENTICATE = "authenticate"  # 3-D Secure first
    DECLINE = "decline"


_TEST_CARDS = {
    "4242424242424242": Outcome.SUCCEED,
    "4000000000003220": Outcome.AUTHENTICATE,
    "4000000000000002": Outcome.DECLINE,
}


class CardInputError(ValueError):
    """What the buyer must correct; `field` is the form field, the text never holds input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def present(number: str, expiry: str, cvc: str, *, today: date) -> tuple[Outcome, CardSummary]:
    """Check a card as typed; the outcome the gateway gives it and all it keeps of it."""
    digits = re.sub(r"[ -]", "", number)
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19 and _luhn(digits)):
        raise CardInputError("number", "Your card number is incorrect.")
    _check_expiry(expiry, today)
    brand = _brand(digits)
    cvc_length = 4 if brand == "amex" else 3
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) == cvc_length):
        raise CardInputError("cvc", "Your card's security code is incorrect.")
    return _TEST_CARDS.get(digits, Outcome.DECLINE), CardSummary(brand=brand, last4=digits[-4:])


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _check_expiry(expiry: str, today: date) -> None:
    match = _EXPIRY.fullmatch(expiry)
    if match is None or not 1 <= int(match[1]) <= 12:
        raise CardInputError("expiry", "Your card's expiry date is incomplete (MM/YY).")
    year = int(match[2])
    year += 2000 if year < 100 else 0
    if (year, int(match[1])) < (today.year, today.month):
        raise CardInputError("expiry", "Your card has expired.")


def _brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    return "unknown"
