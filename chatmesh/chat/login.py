"""Logging in as a dev user: the local cluster's ``POST /dev/token`` on the
edge's own origin registers the user and device and returns a token."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

TOKEN_PATH = "/dev/token"
TOKEN_TTL_S = 6 * 3600
# Fetched again well before it expires, so a reconnect never presents a dead token.
TOKEN_REFRESH_S = TOKEN_TTL_S / 2


class LoginError(Exception):
    pass


def token_url(edge_url: str) -> str:
    """``ws://host:port/...`` → ``http://host:port/dev/token`` (wss → https)."""
    parts = urlsplit(edge_url)
    scheme = {"ws": "http", "wss": "https", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise LoginError(f"not a ws:// or wss:// URL: {edge_url}")
    return urlunsplit((scheme, parts.netloc, TOKEN_PATH, "", ""))


async def fetch_token(
    http: httpx.AsyncClient, url: str, user_id: str, device_id: str, ttl_s: int = TOKEN_TTL_S
) -> str:
    try:
        answer = await http.post(
            url, json={"user_id": user_id, "device_id": device_id, "ttl_s": ttl_s}
        )
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {url}: {exc} (is `make up` running?)") from exc
    if answer.status_code != 200:
        raise LoginError(f"{url} answered {answer.status_code}: {answer.text.strip()}")
    token = answer.json().get("token")
    if not isinstance(token, str):
        raise LoginError(f"{url} answered without a token")
    return token
