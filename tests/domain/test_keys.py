"""Channel references of payment attempts: the first is the order id, each fits the channels,
and an attempt issued in the old "-" form is still read and asked about by its own name."""

from __future__ import annotations

import re

import pytest

from api.services.records import new_id
from domain.keys import (
    MAX_PAYMENT_ATTEMPTS,
    order_id_of,
    payment_reference,
    split_payment_reference,
    stored_payment_reference,
)

ORDER_ID = "ord_0193f0a1b2c3d4e5f6a7b8c9"
# WeChat Pay's out_trade_no: 6 to 32 of letters, digits, _-|*; Alipay's: up to 64 of
# letters, digits and _.
WECHATPAY_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")
ALIPAY_OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")


def test_the_first_attempt_is_the_bare_order_id() -> None:
    assert payment_reference(ORDER_ID) == ORDER_ID
    assert payment_reference(ORDER_ID, 1) == ORDER_ID
    assert split_payment_reference(ORDER_ID) == (ORDER_ID, 1)


def test_later_attempts_have_their_own_reference() -> None:
    assert payment_reference(ORDER_ID, 2) == f"{ORDER_ID}__2"
    references = {payment_reference(ORDER_ID, n) for n in range(1, MAX_PAYMENT_ATTEMPTS + 1)}
    assert len(references) == MAX_PAYMENT_ATTEMPTS


def test_a_reference_leads_back_to_its_order_and_attempt() -> None:
    for attempt in range(1, MAX_PAYMENT_ATTEMPTS + 1):
        reference = payment_reference(ORDER_ID, attempt)
        assert split_payment_reference(reference) == (ORDER_ID, attempt)
        assert order_id_of(reference) == ORDER_ID


def test_every_reference_of_a_real_order_id_fits_wechatpay_and_alipay() -> None:
    order_id = new_id("ord")
    assert len(order_id) == len(ORDER_ID)
    for attempt in (1, 9, 10, MAX_PAYMENT_ATTEMPTS):
        assert WECHATPAY_OUT_TRADE_NO.fullmatch(payment_reference(order_id, attempt))
        assert ALIPAY_OUT_TRADE_NO.fullmatch(payment_reference(order_id, attempt))


def test_attempts_issued_in_the_old_form_keep_their_name_and_lead_back_to_their_order() -> None:
    assert payment_reference(ORDER_ID, 2, legacy=True) == f"{ORDER_ID}-2"
    assert payment_reference(ORDER_ID, 1, legacy=True) == ORDER_ID
    for attempt in range(2, MAX_PAYMENT_ATTEMPTS + 1):
        reference = payment_reference(ORDER_ID, attempt, legacy=True)
        assert split_payment_reference(reference) == (ORDER_ID, attempt)


def test_the_stored_reference_is_the_one_the_channel_was_given() -> None:
    """Alipay and WeChat Pay keep the out_trade_no as the channel's payment id; the card
    gateway's id is its own, and the reference is then the current form."""
    old, new = f"{ORDER_ID}-2", f"{ORDER_ID}__2"
    assert stored_payment_reference(ORDER_ID, 2, old) == old
    assert stored_payment_reference(ORDER_ID, 2, new) == new
    assert stored_payment_reference(ORDER_ID, 2, "pi_3Qx") == new
    assert stored_payment_reference(ORDER_ID, 2, None) == new
    assert stored_payment_reference(ORDER_ID, 2, f"{ORDER_ID}-3") == new  # not this attempt's
    assert stored_payment_reference(ORDER_ID, 1, ORDER_ID) == ORDER_ID


@pytest.mark.parametrize("attempt", [0, -1, MAX_PAYMENT_ATTEMPTS + 1])
def test_attempts_outside_the_range_are_refused(attempt: int) -> None:
    with pytest.raises(ValueError):
        payment_reference(ORDER_ID, attempt)


@pytest.mark.parametrize(
    "reference",
    [
        *(f"{ORDER_ID}{sep}{n}" for sep in ("-", "__") for n in ("1", "0", "02", "100", "x")),
        "-2",
        "__2",
        f"{ORDER_ID}_2",
    ],
)
def test_what_no_attempt_would_make_is_read_as_an_order_id(reference: str) -> None:
    assert split_payment_reference(reference) == (reference, 1)
