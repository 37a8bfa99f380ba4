"""Whose address a handshake counts against."""

from __future__ import annotations

from websockets.datastructures import Headers

from gateway.admission import Admission, AdmissionLimits, parse_networks


def _admission() -> Admission:
    return Admission(
        limiter=None,  # type: ignore[arg-type]  # not used by client_address
        limits=AdmissionLimits(),
        trusted_proxies=parse_networks("10.0.0.0/8, ::1/128"),
        open_connections=lambda: 0,
    )


def test_a_trusted_proxys_last_forwarded_entry_is_the_client() -> None:
    headers = Headers({"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    assert _admission().client_address("10.1.2.3", headers) == "203.0.113.9"
    assert _admission().client_address("::1", headers) == "203.0.113.9"


def test_anyone_else_is_counted_by_their_own_address() -> None:
    forged = Headers({"X-Forwarded-For": "203.0.113.9"})
    assert _admission().client_address("192.0.2.7", forged) == "192.0.2.7"
    assert _admission().client_address("192.0.2.7", Headers()) == "192.0.2.7"
    assert _admission().client_address("10.1.2.3", Headers()) == "10.1.2.3"
    assert _admission().client_address(None, forged) == "unknown"
