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
def owasp_cost() -> Iterator[None]:
    """OWASP's cost for the test, then back to whatever this process used (an in-process
    API of another test may have set the tests' own)."""
    before = passwords.cost()
    passwords.use_cost(passwords.OWASP_MEMORY_KIB, passwords.OWASP_TIME_COST)
    yield
    passwords.use_cost(*before)


def test_the_default_cost_is_owasps_minimum(owasp_cost: None) -> None:
    fields = Settings.model_fields
    assert fields["password_hash_memory_kib"].default == 19 * 1024
    assert fields["password_hash_time_cost"].default == 2
    made = extract_parameters(passwords.hash_password("a long password"))
    assert (made.memory_cost, made.time_cost) == (19 * 1024, 2)


def test_a_weaker_hash_is_made_again_a_stronger_one_kept(
    owasp_cost: None, caplog: pytest.LogCaptureFixture
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
