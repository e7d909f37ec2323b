"""The Temporal client the API and the worker both use: one data converter, the
workflow-task timeout on every start, and the trace carried when there is one.

Its own module so that the API, which only starts and asks workflows, never imports the
worker and with it every activity and workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from metrics.temporal_sdk import sdk_runtime
from settings import Settings
from telemetry import temporal_interceptors
from workflows.task_timeout import WorkflowTaskTimeout

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


async def connect(
    settings: Settings, traces: TracerProvider | None = None, runtime: Runtime | None = None
) -> Client:
    """The client; with `traces`, it carries the trace; `runtime` (the worker's) serves
    the SDK's metrics."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[
            WorkflowTaskTimeout(settings.workflow_task_timeout),
            *temporal_interceptors(traces),
        ],
        runtime=runtime or sdk_runtime(),
    )
