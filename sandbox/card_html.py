"""The card page's HTML: the card form, the 3-D Secure challenge, and outcomes.

Plain forms, no script, every value escaped (merchant ids, descriptions and
URLs come from callers). The form posts (never a GET: a card number must not
end up in a URL, a log line or a browser's history) and is never filled in
again from what the buyer typed; an error names the field, not its value.
"""

from __future__ import annotations

from html import escape

from sandbox.card_memory import CardSummary
from sandbox.money import format_amount
from sandbox.store import PaymentRecord

_LAYOUT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer">
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}
label{{display:block;margin:.75rem 0 .25rem}} input{{font-size:1rem;padding:.4rem;width:100%}}
button{{font-size:1rem;padding:.5rem 1.5rem;margin:1rem .5rem 0 0}}
.error{{color:#b00}}</style></head>
<body>
<h1>{title}</h1>
{content}
</body>
</html>
"""


def card_form(payment: PaymentRecord, action: str, error: str | None = None) -> str:
    notice = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    form = (
        f'<form method="post" action="{escape(action)}">\n'
        '<label for="number">Card number</label>\n'
        '<input id="number" name="number" inputmode="numeric" autocomplete="cc-number"'
        ' placeholder="1234 1234 1234 1234" required>\n'
        '<label for="expiry">Expiry (MM/YY)</label>\n'
        '<input id="expiry" name="expiry" autocomplete="cc-exp" placeholder="12/34" required>\n'
        '<label for="cvc">CVC</label>\n'
        '<input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" required>\n'
        f'<button type="submit">Pay {escape(_amount(payment))}</button>\n'
        "</form>\n"
    )
    return _page("Pay by card", _details(payment) + notice + form)


def challenge(payment: PaymentRecord, action: str, card: CardSummary) -> str:
    """The bank's 3-D Secure step, played by the buyer: complete it or fail it."""
    content = (
        _details(payment)
        + f"<p>Your bank asks you to confirm this payment with your {escape(card.label())}.</p>\n"
        + f'<form method="post" action="{escape(action)}">\n'
        + '<button type="submit" name="outcome" value="complete">Complete</button>\n'
        + '<button type="submit" name="outcome" value="fail">Fail</button>\n'
        + "</form>\n"
    )
    return _page("3-D Secure", content)


def outcome(title: str, message: str, return_url: str | None = None) -> str:
    back = f'<p><a href="{escape(return_url)}">Back to the shop</a></p>\n' if return_url else ""
    return _page(title, f"<p>{escape(message)}</p>\n{back}")


def _details(payment: PaymentRecord) -> str:
    # The shop and the goods (the payment's description), not our internal ids.
    return (
        f'<p class="purchase"><strong>{escape(payment.description)}</strong></p>\n'
        f'<p>Amount: <strong class="amount">{escape(_amount(payment))}</strong></p>\n'
    )


def _amount(payment: PaymentRecord) -> str:
    return format_amount(payment.amount, payment.currency)


def _page(title: str, content: str) -> str:
    return _LAYOUT.format(title=escape(title), content=content)
