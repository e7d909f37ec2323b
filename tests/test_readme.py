"""What the README tells a user that the code also knows: the sandbox's test cards."""

from __future__ import annotations

import re

import stack
from sandbox.card_testcards import _TEST_CARDS, Outcome


def test_the_readme_lists_every_test_card_with_its_outcome() -> None:
    readme = (stack.ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([\d ]{19})` \| (\w+)", readme, re.M)
    listed = {number.replace(" ", ""): first_word for number, first_word in rows}
    words = {Outcome.SUCCEED: "succeeds", Outcome.AUTHENTICATE: "asks", Outcome.DECLINE: "declined"}
    assert listed == {number: words[outcome] for number, outcome in _TEST_CARDS.items()}
