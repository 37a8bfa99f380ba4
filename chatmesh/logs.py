"""Structured logs: one JSON object per line on stderr.

Fields passed with ``extra={"fields": {...}}`` are merged into the object.
A record written while a span is current carries its ``trace_id`` and
``span_id`` (``chatmesh.tracing``), so a trace leads to its log lines.

Tokens and message bodies are never logged, at any level. Our own code does
not log them; libraries that would at DEBUG are held at INFO whatever the
configured level (``CAPPED_AT_INFO``), and every line is scrubbed of
``access_token=`` and ``Bearer`` values on its way out, for a record that
slips past both.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from opentelemetry import trace

# Loggers whose DEBUG records carry secrets. websockets logs every request
# line and header (``?access_token=``, ``Authorization``) and every frame's
# payload (message bodies); redis-py's ``push_response`` logs pub/sub
# payloads under RESP3, and our delivery payloads carry message bodies.
CAPPED_AT_INFO = ("websockets", "push_response")
# The Cassandra driver is chatty at INFO about topology it discovers.
CAPPED_AT_WARNING = ("cassandra",)

REDACTED = "[redacted]"
# JWTs and most bearer tokens are base64url plus dots; stopping at anything
# else keeps the rest of a URL or JSON string intact.
_SECRETS = re.compile(
    r"(?P<key>access_token=|\bBearer\s+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the values of ``access_token=`` and ``Bearer`` replaced."""
    return _SECRETS.sub(lambda m: m.group("key") + REDACTED, text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in CAPPED_AT_INFO:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    for name in CAPPED_AT_WARNING:
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
