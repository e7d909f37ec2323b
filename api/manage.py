"""Operator commands. The first operator is made here, since nobody can sign in yet:

    make operator EMAIL=ops@example.com        (asks for the password twice)
    make operator EMAIL=ops@example.com < file (no terminal: the first line of stdin)
    python -m api.manage create-operator --email ops@example.com --password-stdin < file

No mailer is wired in yet: messages for people (a registration's confirmation code) wait
in the database's outbox, and in development they are read here:

    make outbox EMAIL=buyer@example.com        (the messages to that address, oldest first)

A channel's day is reconciled from a shell, waiting for the run (`api.manage_reconcile`):

    make reconcile CHANNEL=alipay DAY=2026-11-29   (DAY: the channel's yesterday if empty)
    make books                                     (trial balance and ledger problems)

It uses the database `PAYSAGA_DATABASE_URL` names (var/paysaga.db by default).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import date

from sqlmodel import col, select

from api.auth.passwords import MAX_LENGTH, MIN_LENGTH
from api.auth.tokens import utc_now
from api.auth.users import EmailTaken, create_user
from api.manage_reconcile import print_books, print_exceptions, reconcile, yesterday
from db.engine import make_engine, session_factory
from db.identity import OutboundMessage
from db.migrate import upgrade_to_head
from settings import Settings


def _password(from_stdin: bool) -> str:
    # With no terminal to ask on (a pipe, a script, CI) the password is stdin's first line.
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("no password: give it on stdin's first line")
        return line.rstrip("\r\n")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError:  # Ctrl-D at the prompt
        raise SystemExit("no password given") from None
    if again != first:
        raise SystemExit("the passwords differ")
    return first


def create_operator(database_url: str, email: str, password: str, name: str) -> str:
    """Create an operator account; returns its id."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise SystemExit(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    upgrade_to_head(database_url)  # the first operator may come before the first start
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            return create_user(session, email, password, "operator", name, utc_now()).id
    except EmailTaken:
        raise SystemExit(f"an account with the email {email} exists") from None
    finally:
        engine.dispose()


def print_outbox(database_url: str, email: str) -> None:
    """Print the messages waiting for `email`, as a mail catcher would show them."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            query = select(OutboundMessage).where(OutboundMessage.recipient == email.lower())
            messages = session.exec(query.order_by(col(OutboundMessage.created_at))).all()
            for message in messages:
                print(f"To: {message.recipient}\nSubject: {message.subject}\n\n{message.body}\n")
    finally:
        engine.dispose()


def _reconcile(database_url: str, channel: str, day: date) -> None:
    fields = Settings.model_fields
    result = asyncio.run(
        reconcile(
            os.environ.get("PAYSAGA_TEMPORAL_ADDRESS", fields["temporal_address"].default),
            os.environ.get("PAYSAGA_TEMPORAL_NAMESPACE", fields["temporal_namespace"].default),
            os.environ.get("PAYSAGA_TASK_QUEUE", fields["task_queue"].default),
            channel,
            day,
        )
    )
    print(result.model_dump_json())
    print_exceptions(database_url, channel, day)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.manage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-operator", help="create an operator account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    outbox = commands.add_parser("outbox", help="show the messages waiting for an address")
    outbox.add_argument("--email", required=True)
    run = commands.add_parser("reconcile", help="reconcile a channel's day and show what differs")
    run.add_argument("--channel", required=True, choices=("alipay", "wechatpay", "card"))
    run.add_argument("--day", type=date.fromisoformat, help="yyyy-mm-dd (default: yesterday)")
    commands.add_parser("books", help="the trial balance and every ledger problem")
    args = parser.parse_args(argv)
    # Only the database is needed: not the keys the API and the worker need.
    default = Settings.model_fields["database_url"].default
    database_url = os.environ.get("PAYSAGA_DATABASE_URL") or os.environ.get("DATABASE_URL", default)
    if args.command == "outbox":
        print_outbox(database_url, args.email)
        return
    if args.command == "books":
        raise SystemExit(0 if print_books(database_url) else 1)
    if args.command == "reconcile":
        _reconcile(database_url, args.channel, args.day or yesterday(args.channel))
        return
    user_id = create_operator(database_url, args.email, _password(args.password_stdin), args.name)
    print(f"operator {user_id} created for {args.email}")


if __name__ == "__main__":
    main()
