"""``python -m chatmesh.devtools``: the local cluster's developer endpoints.

- ``GET /app/...``: the web client's built files (``web/dist``).
- ``POST /dev/token`` with ``{"user_id", "device_id", "ttl_s"}``: registers
  the user and device if they are new and returns a token for them. Dev
  only: the process holds the cluster's JWT signing key and asks nothing.

Envoy routes ``/app/`` and ``/dev/`` of the edge here, so the page, its
token and its WebSocket share one origin.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import asyncpg
from aiohttp import web

from chatmesh import logs
from chatmesh.auth import MAX_TOKEN_LIFETIME_S, Identity, TokenIssuer
from chatmesh.clock import SystemClock
from chatmesh.conversation import is_valid_user_id
from chatmesh.grpc_server import wait_for_termination_signal
from chatmesh.settings import DEFAULT_PG_DSN, env_int, env_str

log = logging.getLogger("devtools")
DEFAULT_TTL_S = 3600


class DevTools:
    def __init__(self, issuer: TokenIssuer, pg_pool: asyncpg.Pool, web_root: Path) -> None:
        self._issuer = issuer
        self._pg = pg_pool
        self._web_root = web_root

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/dev/token", self.token)
        app.router.add_get("/dev/healthz", self.healthz)
        app.router.add_get("/app", self.index)
        app.router.add_get("/app/", self.index)
        app.router.add_get("/app/{name:.+}", self.file)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._serve("index.html")

    async def file(self, request: web.Request) -> web.StreamResponse:
        return self._serve(request.match_info["name"])

    def _serve(self, name: str) -> web.StreamResponse:
        root = self._web_root.resolve()
        if not root.is_dir():
            raise web.HTTPServiceUnavailable(text="the web client is not built: run web/build")
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise web.HTTPNotFound()
        # Rebuilt in place while developing: always revalidated.
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def token(self, request: web.Request) -> web.Response:
        try:
            asked = await request.json()
            user_id, device_id = str(asked["user_id"]), str(asked.get("device_id", "web"))
            ttl_s = int(asked.get("ttl_s", DEFAULT_TTL_S))
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad("send JSON with user_id, and optionally device_id and ttl_s") from exc
        if not is_valid_user_id(user_id) or not is_valid_user_id(device_id):
            raise _bad("user_id and device_id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
        if not 0 < ttl_s <= MAX_TOKEN_LIFETIME_S:
            raise _bad(f"ttl_s must be 1 to {MAX_TOKEN_LIFETIME_S}")
        try:
            async with self._pg.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id
                )
                await conn.execute(
                    "INSERT INTO devices (user_id, device_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    user_id,
                    device_id,
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("user not registered", extra={"fields": {"error": str(exc)}})
            raise web.HTTPServiceUnavailable(text="PostgreSQL is not reachable; retry") from exc
        token = self._issuer.mint(Identity(user_id, device_id), ttl_s=ttl_s)
        return web.json_response({"token": token, "user_id": user_id, "device_id": device_id})


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=reason)


async def run(private_key: bytes, web_root: Path, port: int, pg_dsn: str) -> None:
    # min_size 0: PostgreSQL may come up after this process.
    pool = await asyncpg.create_pool(pg_dsn, min_size=0)
    tools = DevTools(TokenIssuer(private_key, SystemClock()), pool, web_root)
    runner = web.AppRunner(tools.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    log.info("devtools serving", extra={"fields": {"port": port, "web_root": str(web_root)}})
    try:
        await wait_for_termination_signal()
    finally:
        await runner.cleanup()
        await pool.close()
        log.info("stopped")


def main() -> None:
    env = os.environ
    logs.configure("devtools", env.get("CHATMESH_LOG_LEVEL", "INFO"))
    asyncio.run(
        run(
            Path(env_str(env, "JWT_PRIVATE_KEY_FILE")).read_bytes(),
            Path(env_str(env, "WEB_ROOT")),
            env_int(env, "DEVTOOLS_PORT", 8090),
            env_str(env, "PG_DSN", DEFAULT_PG_DSN),
        )
    )


if __name__ == "__main__":
    main()
