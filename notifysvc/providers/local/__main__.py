"""``python -m notifysvc.providers.local``: the local providers as one process.

FCM trusts the service-account key files given (their token_uri must be
``http://127.0.0.1:<fcm-port>/token``); APNs trusts one signing key (for the
``--apns-topic`` apps, or any app without one), over TLS from ``--tls-dir``;
Web Push serves subscriptions made through the control endpoint
(``--control-port``, see ``control.py``), which also shows every push
received and scripts failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notifysvc.providers.local.apns import LocalApns
from notifysvc.providers.local.control import LocalControl
from notifysvc.providers.local.fcm import LocalFcm
from notifysvc.providers.local.server import LocalServer
from notifysvc.providers.local.webpush import LocalWebPush


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m notifysvc.providers.local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fcm-port", type=int)
    parser.add_argument("--fcm-account", type=Path, action="append", default=[])
    parser.add_argument("--apns-port", type=int)
    parser.add_argument("--apns-key", type=Path, help="the .p8 signing key (PEM)")
    parser.add_argument("--apns-team")
    parser.add_argument("--apns-key-id")
    parser.add_argument("--apns-topic", action="append", default=[])
    parser.add_argument("--tls-dir", type=Path, help="tls.crt and tls.key for APNs")
    parser.add_argument("--webpush-port", type=int)
    parser.add_argument("--control-port", type=int)
    return parser


def _servers(args: argparse.Namespace) -> list[LocalServer]:
    servers: list[LocalServer] = []
    fcm: LocalFcm | None = None
    apns: LocalApns | None = None
    webpush: LocalWebPush | None = None
    if args.fcm_port is not None:
        fcm = LocalFcm()
        for path in args.fcm_account:
            account = json.loads(path.read_text())
            key = serialization.load_pem_private_key(account["private_key"].encode(), None)
            assert isinstance(key, rsa.RSAPrivateKey)
            fcm.add_account(account["client_email"], account["project_id"], key.public_key())
        servers.append(
            LocalServer("fcm", fcm.handle, fcm.faults, port=args.fcm_port, host=args.host)
        )
    if args.apns_port is not None:
        if not (args.apns_key and args.apns_team and args.apns_key_id and args.tls_dir):
            raise SystemExit("APNs needs --apns-key, --apns-team, --apns-key-id and --tls-dir")
        apns = LocalApns()
        key = serialization.load_pem_private_key(args.apns_key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        apns.add_key(args.apns_team, args.apns_key_id, key.public_key(), frozenset(args.apns_topic))
        servers.append(
            LocalServer(
                "apns",
                apns.handle,
                apns.faults,
                port=args.apns_port,
                host=args.host,
                tls_dir=args.tls_dir,
            )
        )
    if args.webpush_port is not None:
        webpush = LocalWebPush()
        servers.append(
            LocalServer(
                "webpush", webpush.handle, webpush.faults, port=args.webpush_port, host=args.host
            )
        )
    if args.control_port is not None:
        control = LocalControl(
            fcm=fcm,
            apns=apns,
            webpush=webpush,
            webpush_url=None
            if args.webpush_port is None
            else f"http://{args.host}:{args.webpush_port}",
        )
        servers.append(
            LocalServer(
                "control", control.handle, control.faults, port=args.control_port, host=args.host
            )
        )
    return servers


async def _run(servers: list[LocalServer]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for server in servers:
        await server.start()
        print(f"{server.url}", flush=True)
    await stop.wait()
    for server in reversed(servers):
        await server.stop()


def main() -> None:
    servers = _servers(_parser().parse_args())
    if not servers:
        raise SystemExit("nothing to serve: give at least one --*-port")
    asyncio.run(_run(servers))


if __name__ == "__main__":
    main()
