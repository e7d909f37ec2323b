"""Alipay's cross-border fields, read the same way from a query answer and a notification.

A trade priced in a foreign currency carries, besides `total_amount` (in that currency):

    trans_currency      the price currency (标价币种); absent: CNY, a domestic trade
    settle_currency     what Alipay settles to the merchant in (we ask for the price currency)
    settle_amount       the trade in settle_currency
    pay_currency        what the buyer paid in (CNY)
    pay_amount          what the buyer paid, in pay_currency
    trans_pay_rate      price -> payer: pay units per one price unit (标价币种兑换支付币种汇率)
    settle_trans_rate   settle -> price: price units per one settle unit

Refund answers of a cross-border trade carry `refund_currency` (the price currency the
refund is made in) and, for the CNY going back to the buyer, the trade's own names
(`pay_currency`, `pay_amount`, `trans_pay_rate`) at the refund's rate.

Amounts are decimal strings in each currency's major unit, rates plain decimal strings;
both are read exactly (`Decimal`, no float) or refused with `AmountFormatError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from channels.alipay.amounts import AmountFormatError, major_to_minor

DOMESTIC_CURRENCY = "CNY"
_RATE = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,16})?")


def trade_currency(fields: Mapping[str, Any]) -> str:
    """The currency of `total_amount` (and of a refund's amount, by `refund_currency`)."""
    return str(fields.get("trans_currency") or DOMESTIC_CURRENCY)


def read_rate(text: str) -> Decimal:
    """ "0.92463712" -> Decimal("0.92463712"), exactly; a rate that is not a plain
    positive decimal is refused (an exponent, a sign, spaces, zero)."""
    if not _RATE.fullmatch(text) or Decimal(text) <= 0:
        raise AmountFormatError(f"not a rate: {text!r}")
    return Decimal(text)


def payer_facts(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`payer_amount`, `payer_currency`, `channel_rate` when the buyer paid in another
    currency than the price's; empty for a domestic trade (or one not paid yet)."""
    payer_currency = fields.get("pay_currency")
    if not fields.get("trans_currency") or not payer_currency or not fields.get("pay_amount"):
        return {}
    return {
        "payer_amount": major_to_minor(str(fields["pay_amount"]), str(payer_currency)),
        "payer_currency": str(payer_currency),
        "channel_rate": read_rate(str(fields.get("trans_pay_rate", ""))),
    }


def settle_facts(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`settle_currency`, `settle_amount` when Alipay says what it settles."""
    settle_currency = fields.get("settle_currency")
    if not settle_currency or not fields.get("settle_amount"):
        return {}
    return {
        "settle_currency": str(settle_currency),
        "settle_amount": major_to_minor(str(fields["settle_amount"]), str(settle_currency)),
    }
