"""``python -m chatmesh``: operator commands.

python -m chatmesh migrate                       apply PostgreSQL and Cassandra schemas
python -m chatmesh keygen [--dir DIR]            create the Ed25519 token signing keypair
python -m chatmesh add-user USER_ID [--name N]   register a user
python -m chatmesh mint-token USER_ID DEVICE_ID  register the device, print a client token (JWT)

add-user and mint-token call msgsvc's DirectoryService (at CHATMESH_MSGSVC_ADDR,
or --msgsvc), so they validate and store exactly as it does. Both are idempotent.
They authenticate with the mesh client certificate in CHATMESH_MESH_TLS_DIR
(``make up`` issues one for ``client/ops``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from chatmesh.auth import Identity, TokenIssuer, generate_keypair
from chatmesh.clock import SystemClock
from chatmesh.mesh.credentials import MeshTls
from chatmesh.provisioning import ProvisioningError, add_user, register_device
from chatmesh.schema.migrate import migrate_cassandra, migrate_postgres
from chatmesh.settings import DEFAULT_MSGSVC_ADDR, DEFAULT_PG_DSN, CassandraSettings, env_str

DEFAULT_KEYS_DIR = Path(
    ".local/cluster/keys"
)  # where `python -m chatmesh.devcluster up` keeps them
DEFAULT_TOKEN_TTL_S = 24 * 3600
DEFAULT_OPS_TLS_DIR = Path(".local/cluster/tls/client/ops")


def _ops_tls() -> MeshTls:
    return MeshTls(Path(env_str(os.environ, "MESH_TLS_DIR", str(DEFAULT_OPS_TLS_DIR))))


def _pg_dsn() -> str:
    return env_str(os.environ, "PG_DSN", DEFAULT_PG_DSN)


def _migrate(_: argparse.Namespace) -> None:
    applied = asyncio.run(migrate_postgres(_pg_dsn()))
    print(f"postgres: {len(applied)} migration(s) applied {applied}")
    settings = CassandraSettings.from_env(os.environ)
    names = migrate_cassandra(settings)
    print(f"cassandra: keyspace {settings.keyspace} at {names[-1] if names else 'empty'}")


def _keygen(args: argparse.Namespace) -> None:
    private, public = generate_keypair(Path(args.dir))
    print(f"private key: {private}\npublic key:  {public}")


def _add_user(args: argparse.Namespace) -> None:
    try:
        created = asyncio.run(
            add_user(_ops_tls(), args.msgsvc, args.user_id, args.name or args.user_id)
        )
    except ProvisioningError as exc:
        sys.exit(str(exc))
    print(f"user {args.user_id} {'created' if created else 'already exists'}")


def _mint_token(args: argparse.Namespace) -> None:
    key_file = Path(
        env_str(os.environ, "JWT_PRIVATE_KEY_FILE", str(DEFAULT_KEYS_DIR / "jwt-private.pem"))
    )
    # Read the key first: a missing key should not leave a device behind.
    issuer = TokenIssuer(key_file.read_bytes(), SystemClock())
    # Every token names a registered device: sends from unregistered ones are refused.
    try:
        asyncio.run(register_device(_ops_tls(), args.msgsvc, args.user_id, args.device_id))
    except ProvisioningError as exc:
        sys.exit(str(exc))
    print(issuer.mint(Identity(args.user_id, args.device_id), ttl_s=args.ttl))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatmesh")
    commands = parser.add_subparsers(required=True)
    migrate = commands.add_parser("migrate", help="apply PostgreSQL and Cassandra schemas")
    migrate.set_defaults(run=_migrate)
    keygen = commands.add_parser("keygen", help="create the token signing keypair")
    keygen.add_argument("--dir", default=str(DEFAULT_KEYS_DIR))
    keygen.set_defaults(run=_keygen)
    msgsvc = env_str(os.environ, "MSGSVC_ADDR", DEFAULT_MSGSVC_ADDR)
    user = commands.add_parser("add-user", help="register a user")
    user.add_argument("--msgsvc", default=msgsvc, help="msgsvc gRPC address")
    user.add_argument("user_id")
    user.add_argument("--name", default="")
    user.set_defaults(run=_add_user)
    token = commands.add_parser("mint-token", help="print a client token")
    token.add_argument("--msgsvc", default=msgsvc, help="msgsvc gRPC address")
    token.add_argument("user_id")
    token.add_argument("device_id")
    token.add_argument("--ttl", type=int, default=DEFAULT_TOKEN_TTL_S, help="seconds")
    token.set_defaults(run=_mint_token)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
