from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest

from chatmesh.auth import Identity, TokenIssuer, TokenVerifier, generate_keypair
from chatmesh.errors import Unauthenticated


class FixedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture
def keys(tmp_path: Path) -> tuple[bytes, bytes]:
    private, public = generate_keypair(tmp_path)
    return private.read_bytes(), public.read_bytes()


def test_minted_token_verifies_to_its_identity(keys: tuple[bytes, bytes]) -> None:
    import time

    issuer = TokenIssuer(keys[0], FixedClock(int(time.time() * 1000)))
    token = issuer.mint(Identity("alice", "phone"), ttl_s=60)
    assert TokenVerifier(keys[1]).verify(token) == Identity("alice", "phone")


def test_expired_token_is_rejected(keys: tuple[bytes, bytes]) -> None:
    issuer = TokenIssuer(keys[0], FixedClock(1_000_000_000_000))  # 2001
    token = issuer.mint(Identity("alice", "phone"), ttl_s=60)
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1]).verify(token)


def test_token_signed_by_another_key_is_rejected(keys: tuple[bytes, bytes], tmp_path: Path) -> None:
    import time

    other_private, _ = generate_keypair(tmp_path / "other")
    token = TokenIssuer(other_private.read_bytes(), FixedClock(int(time.time() * 1000))).mint(
        Identity("alice", "phone"), ttl_s=60
    )
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1]).verify(token)


def test_algorithm_is_pinned(keys: tuple[bytes, bytes]) -> None:
    import time

    now = int(time.time())
    claims = {
        "iss": "chatmesh",
        "aud": "chatmesh-gateway",
        "sub": "alice",
        "dev": "phone",
        "iat": now,
        "exp": now + 60,
    }
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(
        b"="
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    unsigned = (header + b"." + body + b".").decode()
    hmac_signed = jwt.encode(claims, "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256")
    verifier = TokenVerifier(keys[1])
    for token in (unsigned, hmac_signed):
        with pytest.raises(Unauthenticated):
            verifier.verify(token)


def test_garbage_is_rejected(keys: tuple[bytes, bytes]) -> None:
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1]).verify("not-a-token")


def test_a_token_cannot_be_edited_to_name_another_device(keys: tuple[bytes, bytes]) -> None:
    import time

    token = TokenIssuer(keys[0], FixedClock(int(time.time() * 1000))).mint(
        Identity("alice", "phone"), ttl_s=60
    )
    header, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims["dev"] == "phone"
    claims["dev"] = "laptop"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        TokenVerifier(keys[1]).verify(f"{header}.{forged_body}.{signature}")
