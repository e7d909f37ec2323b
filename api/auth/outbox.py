"""Messages to people's addresses, queued in the database (`outbound_messages`) in the
transaction that decided to send them; a mailer sends them from there. Paysaga has no
mailer of its own yet: the rows are the messages (and tests read them).

The confirmation code is in the body, as the mail will carry it; the row is the mail.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session

from db.identity import OutboundMessage

CONFIRM_REGISTRATION = "confirm_registration"
ALREADY_REGISTERED = "already_registered"


def queue_message(
    session: Session, recipient: str, kind: str, subject: str, body: str, now: datetime
) -> None:
    session.add(
        OutboundMessage(
            id=f"msg_{secrets.token_hex(12)}",
            recipient=recipient,
            kind=kind,
            subject=subject,
            body=body,
            created_at=now,
        )
    )


def queue_confirmation(session: Session, email: str, code: str, now: datetime) -> None:
    body = (
        "Welcome to paysaga. To open your account, confirm this address with the code:\n\n"
        f"    {code}\n\n"
        '(POST /v1/auth/confirm with {"code": ...}). It works once, for 24 hours.\n'
        "If you did not sign up, ignore this message: no account is opened without it.\n"
    )
    queue_message(session, email, CONFIRM_REGISTRATION, "Confirm your address", body, now)


def queue_already_registered(session: Session, email: str, now: datetime) -> None:
    body = (
        "Someone tried to register a paysaga account with this address, which already "
        "has one. Nothing was changed.\n"
        "If it was you, sign in with your password. If it was not, you need do nothing; "
        "your account is as it was.\n"
    )
    queue_message(
        session, email, ALREADY_REGISTERED, "Someone tried to register with your address", body, now
    )
