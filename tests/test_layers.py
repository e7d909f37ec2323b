"""The product does not import the sandbox (or the chaos and bench tools): a production
install can leave `sandbox/` out. Only `stack.py`, the development launcher behind
`make run`, starts it."""

from __future__ import annotations

import ast

import stack

PRODUCT = ["domain", "workflows", "activities", "api", "channels", "db", "metrics"]
MODULES = ["settings.py", "logs.py", "worker.py", "worker_health.py", "processes.py"]
TOOLS = ("sandbox", "chaos", "bench", "tests")


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_product_never_imports_the_sandbox_or_the_tools() -> None:
    files = [path for package in PRODUCT for path in (stack.ROOT / package).rglob("*.py")]
    files += [stack.ROOT / name for name in MODULES]
    offending = {
        f"{path.relative_to(stack.ROOT)}: {name}"
        for path in files
        for name in _imports(path.read_text())
        if name.split(".")[0] in TOOLS
    }
    assert offending == set()
