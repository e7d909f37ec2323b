"""`make operator` with no terminal: the password comes from stdin, and no password at all
is a clear refusal, not an EOFError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

import stack
from api.manage import main
from db.engine import make_engine
from db.identity import OutboundMessage, User
from db.migrate import upgrade_to_head


def _make_operator(database: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    """The command `make operator EMAIL=...` runs, with stdin a pipe (no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "api.manage", "create-operator", "--email", "ops@example.com"],
        input=stdin,
        env={**os.environ, "PAYSAGA_DATABASE_URL": f"sqlite:///{database}"},
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_operator_command_reads_a_piped_password(tmp_path: Path) -> None:
    database = tmp_path / "paysaga.db"
    nothing = _make_operator(database, "")
    assert nothing.returncode != 0
    assert "no password" in nothing.stderr and "Traceback" not in nothing.stderr

    made = _make_operator(database, "a long enough password\n")
    assert made.returncode == 0, made.stderr
    assert "a long enough password" not in made.stdout + made.stderr
    engine = make_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            roles = session.exec(select(User.role).where(User.email == "ops@example.com")).all()
    finally:
        engine.dispose()
    assert roles == ["operator"]


def test_the_outbox_command_shows_what_waits_for_an_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'paysaga.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            for recipient in ("buyer@example.com", "other@example.com"):
                session.add(
                    OutboundMessage(
                        id=f"msg_{recipient[:5]}",
                        recipient=recipient,
                        kind="confirm_registration",
                        subject="Confirm your address",
                        body=f"Your code for {recipient}",
                        created_at=datetime.now(UTC),
                    )
                )
    finally:
        engine.dispose()
    monkeypatch.setenv("PAYSAGA_DATABASE_URL", url)
    main(["outbox", "--email", "Buyer@Example.com"])
    shown = capsys.readouterr().out
    assert "Subject: Confirm your address" in shown and "code for buyer@" in shown
    assert "other@" not in shown
