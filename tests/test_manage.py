"""`make operator` with no terminal: the password comes from stdin, and no password at all
is a clear refusal, not an EOFError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

import stack
from db.engine import make_engine
from db.identity import User


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
