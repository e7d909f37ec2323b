"""The system's worker process started again with a test's folder as its PYTHONPATH (a
`sitecustomize` there that breaks one step, say): the test is what that worker does,
and what the worker started afterwards without it does next."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import stack
from tests.conftest import System


def start_worker_with(
    system: System, site: Path, env: Mapping[str, str], log_name: str
) -> stack.Stack:
    """Stop the system's worker and start one with `site` as its PYTHONPATH and `env` in
    its environment; the caller stops it and starts the system's own again."""
    system.processes.stop("worker")
    changed = stack.Stack(env={**system.env, "PYTHONPATH": str(site), **env})
    changed.start("worker", stack.worker_command(), system.log_dir / log_name)
    return changed
