"""What paysaga keeps on this machine is this user's only: the state folder `var/` is
0700, and a SQLite database (accounts, password hashes, payments) and its journals are
0600, whether the API's engine or a migration made them, and even if an earlier
version left them readable by others."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

import stack
from db.engine import make_engine
from db.migrate import upgrade_to_head


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def database_files(database: Path) -> list[Path]:
    return [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]


def test_a_database_the_engine_makes_and_its_journals_are_private(tmp_path: Path) -> None:
    database = tmp_path / "state" / "paysaga.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:  # WAL mode: the -wal and -shm files appear
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        files = database_files(database)
        assert all(file.exists() for file in files), files
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
        assert mode(database.parent) == 0o700
    finally:
        engine.dispose()


def test_a_migration_leaves_a_private_database_and_narrows_an_old_one(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    old.touch(mode=0o644)
    old.chmod(0o644)  # as an earlier version made it, whatever the umask
    for database in (fresh, old):
        upgrade_to_head(f"sqlite:///{database}")
        assert mode(database) == 0o600, database.name
        for journal in database_files(database)[1:]:
            assert not journal.exists() or mode(journal) == 0o600, journal.name


def test_the_state_folder_is_made_private_and_an_old_one_narrowed(tmp_path: Path) -> None:
    new, old = tmp_path / "new-var", tmp_path / "old-var"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    for folder in (new, old):
        stack.make_state_dir(folder)
        assert mode(folder) == 0o700, folder.name
    assert stack.STATE_DIR == stack.ROOT / "var"
