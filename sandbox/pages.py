# ruff: noqa: RUF003  (a comment quotes a description with its multiplication sign)
"""The cashier's HTML: a checkout page and one-line result pages.

Everything shown is escaped; merchant ids and descriptions come from callers. A
foreign-priced wallet payment shows both figures, as the wallets' cashiers do: the
price ("Price: 128.00 HKD") and the CNY the buyer is charged for it, with the rate.
"""

from __future__ import annotations

from html import escape

from sandbox.money import format_amount
from sandbox.store import PaymentRecord

_LAYOUT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}
button{{font-size:1rem;padding:.5rem 1.5rem;margin-right:.5rem}}</style></head>
<body>
<h1>{title}</h1>
{content}
</body>
</html>
"""


def checkout_page(payment: PaymentRecord) -> str:
    base = escape(f"/{payment.channel}/checkout/{payment.payment_id}")
    amount = format_amount(payment.amount, payment.currency)
    # What a buyer reads at a real cashier: the shop and the goods (the payment's
    # description, "Tea shop - Oolong tea ×2, Tea cup"), never our internal ids.
    details = f'<p class="purchase"><strong>{escape(payment.description)}</strong></p>\n'
    if payment.payer_amount is None or payment.payer_currency is None:
        details += f'<p>Amount: <strong class="amount">{escape(amount)}</strong></p>\n'
    else:
        charged = format_amount(payment.payer_amount, payment.payer_currency)
        rate = f"1 {payment.currency} = {payment.channel_rate} {payment.payer_currency}"
        details += (
            f'<p>Price: <strong class="amount">{escape(amount)}</strong></p>\n'
            f'<p>You pay: <strong class="payer-amount">{escape(charged)}</strong>'
            f' <span class="rate">({escape(rate)})</span></p>\n'
        )
    if payment.status == "pending":
        actions = _button(f"{base}/pay", "Pay") + _button(f"{base}/decline", "Decline")
    else:
        actions = f'<p class="status">This payment is {escape(payment.status)}.</p>'
    return _page(f"Pay with {payment.channel}", details + actions)


def result_page(title: str, message: str) -> str:
    return _page(title, f"<p>{escape(message)}</p>")


def _button(action: str, label: str) -> str:
    return f'<form method="post" action="{action}"><button type="submit">{label}</button></form>\n'


def _page(title: str, content: str) -> str:
    return _LAYOUT.format(title=escape(title), content=content)
