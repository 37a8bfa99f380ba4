"""Client authentication: Ed25519-signed JWTs naming a user and a device.

Only the token issuer holds the private key; gateways verify with the public
key. The algorithm is pinned on verification, so a token cannot choose it
(no "alg": "none", no HMAC-with-the-public-key confusion).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chatmesh.clock import Clock
from chatmesh.conversation import is_valid_user_id
from chatmesh.errors import Unauthenticated

ALGORITHM = "EdDSA"
ISSUER = "chatmesh"
AUDIENCE = "chatmesh-gateway"
DEVICE_CLAIM = "dev"
LEEWAY_S = 30  # tolerated clock skew between issuer and gateway
# No token lives longer: a revoked device's tokens are refused by a record
# kept this long, and a stolen token is useless after at most this.
MAX_TOKEN_LIFETIME_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    identity: Identity
    issued_at_s: int
    expires_at_s: int


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Writes a new Ed25519 keypair as PEM files and returns (private, public)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_path = directory / "jwt-private.pem"
    public_path = directory / "jwt-public.pem"
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, clock: Clock) -> None:
        self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        self._clock = clock

    def mint(self, identity: Identity, *, ttl_s: int) -> str:
        if not is_valid_user_id(identity.user_id) or not is_valid_user_id(identity.device_id):
            raise ValueError("user and device ids must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
        if not 0 < ttl_s <= MAX_TOKEN_LIFETIME_S:
            raise ValueError(f"token lifetime must be 1..{MAX_TOKEN_LIFETIME_S} s, got {ttl_s}")
        now_s = self._clock.now_ms() // 1000
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": identity.user_id,
            DEVICE_CLAIM: identity.device_id,
            "iat": now_s,
            "exp": now_s + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)  # type: ignore[arg-type]


class TokenVerifier:
    def __init__(
        self, public_key_pem: bytes, *, max_lifetime_s: int = MAX_TOKEN_LIFETIME_S
    ) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem)
        self._max_lifetime_s = max_lifetime_s

    def verify(self, token: str) -> Identity:
        return self.verify_token(token).identity

    def verify_token(self, token: str) -> VerifiedToken:
        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud", DEVICE_CLAIM]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("INVALID_TOKEN", f"token rejected: {exc}") from exc
        user_id, device_id = claims["sub"], claims[DEVICE_CLAIM]
        if not (isinstance(user_id, str) and is_valid_user_id(user_id)):
            raise Unauthenticated("INVALID_TOKEN", "token subject is not a valid user id")
        if not (isinstance(device_id, str) and is_valid_user_id(device_id)):
            raise Unauthenticated("INVALID_TOKEN", "token device is not a valid device id")
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not (isinstance(issued_at, int) and isinstance(expires_at, int)):
            raise Unauthenticated("INVALID_TOKEN", "iat and exp must be integers")
        # A lifetime over the cap would outlive the revocation records.
        if expires_at - issued_at > self._max_lifetime_s:
            raise Unauthenticated(
                "TOKEN_LIFETIME_TOO_LONG",
                f"tokens may live at most {self._max_lifetime_s} s",
            )
        return VerifiedToken(Identity(user_id=user_id, device_id=device_id), issued_at, expires_at)
