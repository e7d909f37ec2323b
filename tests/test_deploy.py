"""The image holds what the package is made of: every module and package pyproject.toml
names is copied into the Dockerfile's build stage (an image without one fails at import,
on a machine where no Docker engine runs to show it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_dockerfile_copies_every_module_and_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {f"{name}.py" for name in project["py-modules"]}
    packages = {pattern.rstrip("*") for pattern in project["packages"]["find"]["include"]}
    copied = set()
    for instruction in re.findall(r"^COPY (.+?)(?<!\\)$", _joined(ROOT / "Dockerfile"), re.M):
        copied |= set(instruction.split()[:-1])  # the last word is the destination
    assert modules - copied == set(), "add them to the Dockerfile's COPY"
    assert packages - copied == set(), "add them to the Dockerfile's COPY"


def _joined(dockerfile: Path) -> str:
    """The Dockerfile with continued lines joined."""
    return re.sub(r"\\\n\s*", " ", dockerfile.read_text())
