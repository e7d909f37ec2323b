"""Reconciliation's counters, on the worker's registry (metrics.business's rule: an
exception is counted when it is first recorded, and when it is first closed)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

from domain.reconciliation import DiscrepancyType, RunResult
from metrics import new_registry


class ReconciliationMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        self._found = Counter(
            "paysaga_reconciliation_exceptions",
            "Differences between a channel's bill and our records, by type.",
            ["channel", "type"],
            registry=self.registry,
        )
        self._auto = Counter(
            "paysaga_reconciliation_auto_resolved",
            "Reconciliation exceptions the worker settled by asking the channel.",
            ["channel", "type"],
            registry=self.registry,
        )
        self._runs = Counter(
            "paysaga_reconciliation_runs",
            "Reconciliation runs finished, by whether they found any exception.",
            ["channel", "outcome"],
            registry=self.registry,
        )

    def exceptions_found(self, channel: str, types: Iterable[DiscrepancyType | str]) -> None:
        for kind in types:
            self._found.labels(channel, str(kind)).inc()

    def exception_auto_resolved(self, channel: str, kind: str) -> None:
        self._auto.labels(channel, kind).inc()

    def run_finished(self, result: RunResult) -> None:
        outcome = "clean" if result.exceptions == 0 else "exceptions"
        self._runs.labels(result.channel, outcome).inc()
