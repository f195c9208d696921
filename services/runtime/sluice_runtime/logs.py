"""Structured logging for services: JSON lines for collectors, or text for humans.

Every record gets the ids of the OpenTelemetry span current when it was logged, so a log line can
be found from a trace and the other way round. A JSON line holds ``timestamp`` (UTC, ISO 8601),
``level``, ``logger``, ``message``, ``service``, ``trace_id``, ``span_id``, the traceback as
``exception`` when there is one, and any ``extra={...}`` fields given to the logging call.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from sluice_runtime.config import LOG_FORMATS, LOG_LEVELS

# The name that marks the handler configure_logging installed, so a second call replaces it.
_HANDLER_NAME = "sluice-runtime"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s] %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "service", "trace_id", "span_id"}
)


class TraceContextFilter(logging.Filter):
    """Adds ``service``, ``trace_id`` and ``span_id`` (hex, empty outside a span) to records."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = trace.format_trace_id(span_context.trace_id)
            record.span_id = trace.format_span_id(span_context.span_id)
        else:
            record.trace_id = ""
            record.span_id = ""
        record.service = self.service
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values that are not JSON types are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", ""),
            "trace_id": getattr(record, "trace_id", ""),
            "span_id": getattr(record, "span_id", ""),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    *,
    service: str = "",
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (default stderr) in ``fmt`` at ``level``.

    Calling it again replaces the handler it installed before (other handlers are left alone).
    Returns the handler, so a caller can remove it again.
    """
    level_name = level.upper()
    if level_name not in LOG_LEVELS:
        raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"fmt must be json or text, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(TraceContextFilter(service))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    root.setLevel(level_name)
    return handler
