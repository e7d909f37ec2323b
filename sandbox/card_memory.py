"""What the card gateway knows that the core store has no room for.

The core store keeps a payment as pending, paid, declined or closed. The
gateway also knows, per payment (by the core's payment_id):

- a 3-D Secure challenge in progress (the intent shows `requires_action`),
  with the brand and last four digits of the card being authenticated;
- why the last attempt failed (`last_payment_error`); without an entry a
  declined payment shows a plain `card_declined`, as after the control API's
  decline;
- the `return_url` the merchant gave, for the page's "back to the shop" link.

It lives in memory, in one instance per sandbox process (`MEMORY`) shared by
the API, the card page and the webhook renderer, which the app builds
separately. A restart forgets it: a challenge in progress is gone (the
buyer starts again) and a failure reason becomes plain `card_declined`.
Nothing here ever holds more of a card than its brand and last four digits.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.card.wire import PaymentError


@dataclass(frozen=True)
class CardSummary:
    """All of a card the gateway keeps."""

    brand: str  # visa, mastercard, amex, ...
    last4: str

    def label(self) -> str:
        return f"{self.brand.title()} ending in {self.last4}"


DECLINED = PaymentError(
    type="card_error",
    code="card_declined",
    decline_code="generic_decline",
    message="Your card was declined.",
)
AUTHENTICATION_FAILED = PaymentError(
    type="card_error",
    code="payment_intent_authentication_failure",
    message="The card's 3-D Secure authentication failed.",
)


class CardMemory:
    def __init__(self) -> None:
        self._challenges: dict[str, CardSummary] = {}
        self._errors: dict[str, PaymentError] = {}
        self._return_urls: dict[str, str] = {}

    def start_challenge(self, payment_id: str, card: CardSummary) -> None:
        self._challenges[payment_id] = card

    def challenge(self, payment_id: str) -> CardSummary | None:
        return self._challenges.get(payment_id)

    def end_challenge(self, payment_id: str) -> CardSummary | None:
        """Take the challenge away, so that it is answered at most once."""
        return self._challenges.pop(payment_id, None)

    def record_error(self, payment_id: str, error: PaymentError) -> None:
        self._errors[payment_id] = error

    def last_error(self, payment_id: str) -> PaymentError:
        """Only asked about a declined payment; a decline we did not see is `card_declined`."""
        return self._errors.get(payment_id, DECLINED)

    def remember_return_url(self, payment_id: str, url: str) -> None:
        self._return_urls[payment_id] = url

    def return_url(self, payment_id: str) -> str | None:
        return self._return_urls.get(payment_id)


MEMORY = CardMemory()
