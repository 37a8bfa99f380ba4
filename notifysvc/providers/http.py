"""The HTTP plumbing the provider clients share: bounded pools, timeouts on
every call, and transport failures turned into retries."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass

import httpx

from notifysvc.providers.message import RetryAfter, retry_after_seconds

# A provider that has not answered in 10 s is having a bad moment; the job
# goes back to the queue rather than hold a sender.
REQUEST_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
# APNs and FCM multiplex over a few HTTP/2 connections; more sockets than
# this to one provider only means we are being throttled.
MAX_CONNECTIONS = 20
MAX_KEEPALIVE_CONNECTIONS = 10

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HttpOptions:
    timeout_s: float = REQUEST_TIMEOUT_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    max_keepalive_connections: int = MAX_KEEPALIVE_CONNECTIONS
    # None: the system's trust store, as the real providers need.
    verify: ssl.SSLContext | None = None


def make_client(options: HttpOptions, *, http2: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        http2=http2,
        http1=not http2,
        verify=options.verify if options.verify is not None else True,
        timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
        limits=httpx.Limits(
            max_connections=options.max_connections,
            max_keepalive_connections=options.max_keepalive_connections,
        ),
        follow_redirects=False,
    )


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
) -> httpx.Response | RetryAfter:
    """The response, or a retry when none came: a timeout or a broken
    connection says nothing about the message or the credential."""
    try:
        response = await client.send(request)
        await response.aread()
    except httpx.TimeoutException as exc:
        return RetryAfter(None, f"timeout: {type(exc).__name__}")
    except httpx.TransportError as exc:
        return RetryAfter(None, f"transport: {type(exc).__name__}")
    return response


def retry_for(response: httpx.Response, reason: str, now_s: float) -> RetryAfter:
    now = datetime.datetime.fromtimestamp(now_s, datetime.UTC)
    return RetryAfter(retry_after_seconds(response.headers.get("retry-after"), now), reason)
