"""Channel references of payment attempts: the first is the order id, each fits the channels."""

from __future__ import annotations

import re

import pytest

from api.records import new_id
from domain.keys import (
    MAX_PAYMENT_ATTEMPTS,
    order_id_of,
    payment_reference,
    split_payment_reference,
)

ORDER_ID = "ord_0193f0a1b2c3d4e5f6a7b8c9"
# WeChat Pay's out_trade_no: 6 to 32 of letters, digits, _-|* (Alipay takes up to 64).
WECHATPAY_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")


def test_the_first_attempt_is_the_bare_order_id() -> None:
    assert payment_reference(ORDER_ID) == ORDER_ID
    assert payment_reference(ORDER_ID, 1) == ORDER_ID
    assert split_payment_reference(ORDER_ID) == (ORDER_ID, 1)


def test_later_attempts_have_their_own_reference() -> None:
    assert payment_reference(ORDER_ID, 2) == f"{ORDER_ID}-2"
    references = {payment_reference(ORDER_ID, n) for n in range(1, MAX_PAYMENT_ATTEMPTS + 1)}
    assert len(references) == MAX_PAYMENT_ATTEMPTS


def test_a_reference_leads_back_to_its_order_and_attempt() -> None:
    for attempt in range(1, MAX_PAYMENT_ATTEMPTS + 1):
        reference = payment_reference(ORDER_ID, attempt)
        assert split_payment_reference(reference) == (ORDER_ID, attempt)
        assert order_id_of(reference) == ORDER_ID


def test_every_reference_of_a_real_order_id_fits_wechatpay() -> None:
    order_id = new_id("ord")
    assert len(order_id) == len(ORDER_ID)
    for attempt in (1, 9, 10, MAX_PAYMENT_ATTEMPTS):
        assert WECHATPAY_OUT_TRADE_NO.fullmatch(payment_reference(order_id, attempt))


@pytest.mark.parametrize("attempt", [0, -1, MAX_PAYMENT_ATTEMPTS + 1])
def test_attempts_outside_the_range_are_refused(attempt: int) -> None:
    with pytest.raises(ValueError):
        payment_reference(ORDER_ID, attempt)


@pytest.mark.parametrize(
    "reference",
    [f"{ORDER_ID}-1", f"{ORDER_ID}-0", f"{ORDER_ID}-02", f"{ORDER_ID}-100", f"{ORDER_ID}-x", "-2"],
)
def test_what_no_attempt_would_make_is_read_as_an_order_id(reference: str) -> None:
    assert split_payment_reference(reference) == (reference, 1)
