from __future__ import annotations

import json
import logging
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider

from chatmesh.logs import JsonFormatter, redact

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl-_x"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"< GET /?access_token={TOKEN} HTTP/1.1", "< GET /?access_token=[redacted] HTTP/1.1"),
        (
            f"/?encoding=binary&access_token={TOKEN}&x=1",
            "/?encoding=binary&access_token=[redacted]&x=1",
        ),
        (f"< authorization: Bearer {TOKEN}", "< authorization: Bearer [redacted]"),
        (f"Authorization: bearer  {TOKEN}", "Authorization: bearer  [redacted]"),
        ("connected as alice/phone", "connected as alice/phone"),
    ],
)
def test_redact_replaces_token_values_only(line: str, expected: str) -> None:
    assert redact(line) == expected


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad url /?access_token={TOKEN}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("websockets.server", logging.INFO, __file__, 1, msg, args, exc_info)


def test_formatter_redacts_message_fields_and_tracebacks() -> None:
    record = _record("< %s", f"authorization: Bearer {TOKEN}", exc=True)
    record.fields = {"path": f"/?access_token={TOKEN}"}
    line = JsonFormatter("gateway").format(record)
    assert TOKEN not in line
    entry = json.loads(line)
    assert entry["msg"] == "< authorization: Bearer [redacted]"
    assert entry["path"] == "/?access_token=[redacted]"
    assert "access_token=[redacted]" in entry["exc"]


def test_a_record_written_in_a_span_carries_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        entry = json.loads(JsonFormatter("msgsvc").format(_record("inside")))
    context = span.get_span_context()
    assert entry["trace_id"] == f"{context.trace_id:032x}"
    assert entry["span_id"] == f"{context.span_id:016x}"


def test_a_record_outside_any_span_has_no_trace_fields() -> None:
    entry = json.loads(JsonFormatter("msgsvc").format(_record("outside")))
    assert "trace_id" not in entry
    assert "span_id" not in entry
