"""configure_logging: JSON lines and text, both carrying the current trace and span ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sluice_runtime.logs import configure_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored to its handlers and level after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def tracer() -> trace.Tracer:
    # A private provider: the spans are real, the process-wide provider is untouched.
    return TracerProvider().get_tracer("test_logs")


def test_json_lines_carry_the_span_ids_and_extra_fields(
    root_logger: logging.Logger, tracer: trace.Tracer
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", service="metadata", stream=stream)

    with tracer.start_as_current_span("CreateArtifact") as span:
        logging.getLogger("sluice.test").info("stored %d artifacts", 3, extra={"run_id": "r-1"})
    logging.getLogger("sluice.test").debug("below the level")

    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    span_context = span.get_span_context()
    assert entry["level"] == "INFO"
    assert entry["logger"] == "sluice.test"
    assert entry["message"] == "stored 3 artifacts"
    assert entry["service"] == "metadata"
    assert entry["trace_id"] == f"{span_context.trace_id:032x}"
    assert entry["span_id"] == f"{span_context.span_id:016x}"
    assert entry["run_id"] == "r-1"
    assert entry["timestamp"].endswith("+00:00")


def test_json_outside_a_span_and_with_a_traceback(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "json", stream=stream)

    try:
        raise KeyError("lost")
    except KeyError:
        logging.getLogger("sluice.test").exception("failed")

    entry = json.loads(stream.getvalue())
    assert (entry["trace_id"], entry["span_id"]) == ("", "")
    assert entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback")
    assert "KeyError: 'lost'" in entry["exception"]


def test_text_format_for_humans(root_logger: logging.Logger, tracer: trace.Tracer) -> None:
    stream = io.StringIO()
    configure_logging("debug", "text", stream=stream)

    with tracer.start_as_current_span("Get") as span:
        logging.getLogger("sluice.test").debug("hello")

    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert stream.getvalue().rstrip().endswith(f"DEBUG sluice.test [trace_id={trace_id}] hello")


def test_configuring_again_replaces_the_handler(root_logger: logging.Logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "text", stream=first)
    configure_logging("INFO", "json", stream=second)

    logging.getLogger("sluice.test").info("once")

    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["message"] == "once"


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "text"), ("INFO", "yaml")])
def test_bad_arguments_are_refused(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="must be"):
        configure_logging(level, fmt)
