"""The Temporal SDK's own metrics, served on the worker's metrics port beside ours.

The SDK (its Rust core) exports Prometheus metrics itself, on an address it binds:
workflows completed and failed by type, pollers per task queue, schedule-to-start
and execution latencies, slots. We bind it to a free loopback port and read it at
each scrape, so the worker has one metrics endpoint, one scrape target and one `up`;
the SDK's port is never exposed. Names follow Prometheus conventions (`_total`,
`_seconds`).
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

logger = logging.getLogger(__name__)


def loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sdk_runtime(metrics_address: str | None = None) -> Runtime:
    """A Temporal runtime whose core logs through Python's logging (so they are JSON lines
    like ours, not the core's own coloured text) and, given an address (host:port), serves
    the SDK's metrics there."""
    metrics = (
        PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
        )
        if metrics_address
        else None
    )
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    return Runtime(telemetry=TelemetryConfig(logging=core_logs, metrics=metrics))


class TemporalSdkMetrics(Collector):
    """Reads the SDK's exporter at scrape time and hands its families on."""

    def __init__(self, address: str, timeout_seconds: float = 2.0) -> None:
        self._url = f"http://{address}/metrics"
        self._timeout = timeout_seconds

    def describe(self) -> Iterable[Metric]:
        return []  # the SDK's names are its own (temporal_*), never ours

    def collect(self) -> Iterable[Metric]:
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout) as response:
                text = response.read().decode("utf-8")
        except OSError:
            logger.warning("the Temporal SDK's metrics could not be read", exc_info=True)
            return []
        return list(text_string_to_metric_families(text))
