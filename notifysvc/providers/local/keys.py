"""Credentials for a development cluster's local providers: an FCM service
account, an APNs signing key and a VAPID key, written once under a
directory, and the settings that point notifysvc at the local servers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notifysvc.providers.local.fcm import TOKEN_PATH

PROJECT_ID = "chatmesh-local"
CLIENT_EMAIL = "push@chatmesh-local.iam.gserviceaccount.com"
APNS_TEAM_ID = "CHATMESHLO"
APNS_KEY_ID = "LOCALKEY01"
APNS_TOPIC = "net.chatmesh.app"  # the bundle id local apps register with
WEBPUSH_SUBJECT = "mailto:push@chatmesh.local"


@dataclass(frozen=True, slots=True)
class LocalProviderPorts:
    fcm: int
    apns: int
    webpush: int
    control: int


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_once(path: Path, make: bytes | None = None) -> Path:
    if not path.exists() and make is not None:
        path.write_bytes(make)
        path.chmod(0o600)
    return path


def ensure_keys(directory: Path, ports: LocalProviderPorts) -> dict[str, Path]:
    """The key files, created unless present. The service account's
    ``token_uri`` follows the FCM port, so that file is rewritten each time."""
    directory.mkdir(parents=True, exist_ok=True)
    rsa_key = directory / "fcm-key.pem"
    if not rsa_key.exists():
        _write_once(rsa_key, _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    account = directory / "fcm-service-account.json"
    account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": "local",
                "private_key": rsa_key.read_text(),
                "client_email": CLIENT_EMAIL,
                "token_uri": f"http://127.0.0.1:{ports.fcm}{TOKEN_PATH}",
            }
        )
    )
    account.chmod(0o600)
    apns_key = directory / "apns-key.p8"
    if not apns_key.exists():
        _write_once(apns_key, _pem(ec.generate_private_key(ec.SECP256R1())))
    vapid_key = directory / "vapid-key.pem"
    if not vapid_key.exists():
        _write_once(vapid_key, _pem(ec.generate_private_key(ec.SECP256R1())))
    return {"fcm_account": account, "apns_key": apns_key, "vapid_key": vapid_key}


def provider_args(keys: dict[str, Path], ports: LocalProviderPorts, tls_dir: Path) -> list[str]:
    """Arguments of ``python -m notifysvc.providers.local`` for these keys."""
    return [
        "--fcm-port", str(ports.fcm),
        "--fcm-account", str(keys["fcm_account"]),
        "--apns-port", str(ports.apns),
        "--apns-key", str(keys["apns_key"]),
        "--apns-team", APNS_TEAM_ID,
        "--apns-key-id", APNS_KEY_ID,
        "--tls-dir", str(tls_dir),
        "--webpush-port", str(ports.webpush),
        "--control-port", str(ports.control),
    ]  # fmt: skip


def notifysvc_env(
    keys: dict[str, Path], ports: LocalProviderPorts, apns_ca_file: Path
) -> dict[str, str]:
    """notifysvc's provider settings (without the CHATMESH_ prefix)."""
    apns_url = f"https://127.0.0.1:{ports.apns}"
    return {
        "FCM_SERVICE_ACCOUNT_FILE": str(keys["fcm_account"]),
        "FCM_URL": f"http://127.0.0.1:{ports.fcm}",
        "APNS_KEY_FILE": str(keys["apns_key"]),
        "APNS_TEAM_ID": APNS_TEAM_ID,
        "APNS_KEY_ID": APNS_KEY_ID,
        "APNS_PRODUCTION_URL": apns_url,
        "APNS_SANDBOX_URL": apns_url,
        "APNS_CA_FILE": str(apns_ca_file),
        "WEBPUSH_VAPID_KEY_FILE": str(keys["vapid_key"]),
        "WEBPUSH_SUBJECT": WEBPUSH_SUBJECT,
    }
