"""How every process logs: one JSON object per line in production, a short readable line
on a console (`make run`). `PAYSAGA_LOG_FORMAT` chooses: json (the default) or console.

A JSON line holds time, level, service, logger and message, and where known request_id
(the API request), workflow_id (the Temporal workflow an activity or workflow serves),
order_id (the order it is about) and trace_id (the OpenTelemetry trace, when tracing
is on); a traceback, when there is one, as exc_info.

Quiet either way: no line per outgoing HTTP request (httpx logs at INFO for each), and
the business refusals activities report (`activities.errors.business_error`) are benign
to Temporal, so it logs them at DEBUG, without a traceback.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from domain.keys import ORDER_WORKFLOW_PREFIX

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ORDER_ID: ContextVar[str | None] = ContextVar("order_id", default=None)

_FIELDS = ("service", "request_id", "workflow_id", "order_id", "trace_id")
_QUIET = ("httpx", "httpcore")


class _Context(logging.Filter):
    """Adds the service and what the event is about to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        temporal = getattr(record, "temporal_activity", None) or getattr(
            record, "temporal_workflow", None
        )
        workflow_id = temporal.get("workflow_id") if isinstance(temporal, dict) else None
        record.service = self._service
        record.request_id = REQUEST_ID.get()
        record.workflow_id = workflow_id
        record.order_id = ORDER_ID.get() or _order_of(workflow_id)
        record.trace_id = _trace_id()
        return True


class _Json(JsonFormatter):
    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log_record.items() if value is not None}


def configure_logging(service: str, log_format: str) -> None:
    """Route every logger (uvicorn's too) through one handler on stderr, at INFO."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context(service))
    if log_format == "json":
        handler.setFormatter(
            _Json(
                "{asctime}{levelname}{service}{name}{message}"
                + "".join(f"{{{f}}}" for f in _FIELDS),
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own plain-text handlers
        logger.propagate = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Python's warnings (a library's UserWarning) go through the same handler, as one JSON
    # line at WARNING, not as raw text on stderr.
    logging.captureWarnings(True)


def _order_of(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith(ORDER_WORKFLOW_PREFIX):
        return workflow_id.removeprefix(ORDER_WORKFLOW_PREFIX)
    return None


def _trace_id() -> str | None:
    try:
        from opentelemetry import trace  # only there when tracing is installed
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
