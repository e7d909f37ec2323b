"""When an order may be modified, or have its payment method chosen."""

from __future__ import annotations

from domain.failures import ORDER_INVALID, ORDER_NOT_MODIFIABLE
from domain.keys import MAX_PAYMENT_ATTEMPTS
from domain.modifiability import PaymentStanding, choice_refusal, modification_refusal
from domain.order_status import OrderStatus

WAITING = PaymentStanding(
    status=OrderStatus.AWAITING_PAYMENT,
    paid=False,
    cancelling=False,
    awaiting_payment=True,
    channel="alipay",
    payment_attempt=1,
)


def standing(**changes: object) -> PaymentStanding:
    return WAITING.model_copy(update=changes)


def message(order: PaymentStanding) -> str | None:
    refusal = modification_refusal(order)
    return refusal.message if refusal else None


def test_an_order_waiting_for_the_buyer_may_be_modified() -> None:
    assert modification_refusal(WAITING) is None


def test_a_paid_cancelled_or_closing_order_may_not() -> None:
    tail = "; only an order awaiting payment can be modified"
    assert message(standing(paid=True)) == f"the order is paid{tail}"
    assert message(standing(cancelling=True)) == f"the order is being cancelled{tail}"
    assert message(standing(awaiting_payment=False)) == f"the order is closing{tail}"
    created = standing(awaiting_payment=False, status=OrderStatus.CREATED)
    assert message(created) == f"the order is created{tail}"
    refusal = modification_refusal(standing(paid=True))
    assert refusal is not None and refusal.error_type == ORDER_NOT_MODIFIABLE


def test_payment_comes_first_even_for_an_order_being_cancelled() -> None:
    both = standing(paid=True, cancelling=True)
    assert (message(both) or "").startswith("the order is paid;")


def test_an_order_without_a_method_or_out_of_attempts_may_not() -> None:
    assert "choose a payment method first" in (message(standing(channel="")) or "")
    last = standing(payment_attempt=MAX_PAYMENT_ATTEMPTS)
    assert message(last) == f"an order can be modified at most {MAX_PAYMENT_ATTEMPTS - 1} times"
    assert message(standing(payment_attempt=MAX_PAYMENT_ATTEMPTS - 1)) is None


def choose(order: PaymentStanding, channel: str = "card", **facts: bool) -> object:
    known, takes = facts.get("known", True), facts.get("takes_currency", True)
    return choice_refusal(order, channel, "CNY", known=known, takes_currency=takes)


def test_a_method_may_be_chosen_while_the_order_waits() -> None:
    assert choose(standing(channel="")) is None
    assert choose(WAITING) is None  # switching from alipay


def test_no_method_once_the_order_is_paid_cancelled_or_ending() -> None:
    for order in (standing(paid=True), standing(cancelling=True), standing(awaiting_payment=False)):
        refusal = choice_refusal(order, "card", "CNY", known=True, takes_currency=True)
        assert refusal is not None and refusal.error_type == ORDER_NOT_MODIFIABLE
        assert refusal.message == "the order no longer awaits payment; no method can be chosen"


def test_an_unknown_channel_or_currency_is_invalid_input() -> None:
    unknown = choice_refusal(WAITING, "paypal", "CNY", known=False, takes_currency=False)
    assert unknown is not None
    assert (unknown.error_type, unknown.details) == (ORDER_INVALID, ("channel", "channel"))
    no_cny = choice_refusal(WAITING, "card", "CNY", known=True, takes_currency=False)
    assert no_cny is not None and no_cny.message == "card does not take CNY"
    assert no_cny.details == ("currency_not_supported", "channel")


def test_switching_channel_needs_an_attempt_left_staying_does_not() -> None:
    last = standing(payment_attempt=MAX_PAYMENT_ATTEMPTS)
    refusal = choice_refusal(last, "card", "CNY", known=True, takes_currency=True)
    assert refusal is not None
    assert refusal.message == f"an order can open at most {MAX_PAYMENT_ATTEMPTS} payments"
    assert choice_refusal(last, "alipay", "CNY", known=True, takes_currency=True) is None
