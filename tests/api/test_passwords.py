"""Password hashes: argon2id at OWASP's minimum unless the settings lower it (the tests
do, for speed); a hash is made again only when it is weaker than today's cost, never to
make a stronger one weaker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import extract_parameters

from api.auth import passwords
from settings import Settings


@pytest.fixture
def restored_cost() -> Iterator[None]:
    yield
    passwords.use_cost(passwords.OWASP_MEMORY_KIB, passwords.OWASP_TIME_COST)


def test_the_default_cost_is_owasps_minimum() -> None:
    fields = Settings.model_fields
    assert fields["password_hash_memory_kib"].default == 19 * 1024
    assert fields["password_hash_time_cost"].default == 2
    made = extract_parameters(passwords.hash_password("a long password"))
    assert (made.memory_cost, made.time_cost) == (19 * 1024, 2)


def test_a_weaker_hash_is_made_again_a_stronger_one_kept(
    restored_cost: None, caplog: pytest.LogCaptureFixture
) -> None:
    strong = passwords.hash_password("a long password")
    passwords.use_cost(1024, 1)
    assert "below OWASP" in caplog.text
    weak = passwords.hash_password("a long password")
    assert passwords.verify_password(weak, "a long password")
    assert not passwords.needs_rehash(strong)  # never made weaker
    passwords.use_cost(passwords.OWASP_MEMORY_KIB, passwords.OWASP_TIME_COST)
    assert passwords.needs_rehash(weak)
    assert not passwords.needs_rehash(strong)
