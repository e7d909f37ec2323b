"""The pages speak English and Simplified Chinese: chosen by the switch's cookie, else by
Accept-Language; every message a template asks for has its Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.pages import i18n
from api.pages.i18n import ZH, choose_locale, translate

TEMPLATES = Path(i18n.__file__).parent / "templates"


@pytest.mark.parametrize(
    ("cookie", "accept", "chosen"),
    [
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        (None, "en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        (None, "fr-FR, zh;q=0.5", "zh"),  # the best one we have
        (None, "zh;q=0, en;q=0.1", "en"),  # q=0 means "not this"
        (None, None, "en"),
        ("zh", "en", "zh"),  # the switch wins
        ("xx", "zh", "zh"),  # a cookie we never set is ignored
    ],
)
def test_the_locale_is_the_switch_then_accept_language(
    cookie: str | None, accept: str | None, chosen: str
) -> None:
    assert choose_locale(cookie, accept) == chosen


def test_every_message_the_templates_use_has_its_chinese() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([^']+)'\)", template.read_text()))
    assert used, "the templates ask for no message: has t() changed?"
    assert sorted(used - set(ZH)) == []
    assert translate("zh", "Sign in") == "登录"
    assert translate("en", "Sign in") == "Sign in"
