"""A private PostgreSQL cluster that accepts only TLS and SCRAM passwords.

initdb'd afresh in a temporary directory (about a second), run by the
``postgres`` OS user because postgres refuses to run as root, as
``deploy/local/backing.sh`` does for the shared one. pg_hba.conf allows
``hostssl`` with ``scram-sha-256`` and rejects every ``hostnossl``
connection; there is no Unix socket.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.support.store_pki import StorePki
from tests.support.tcp_proxy import free_port

STARTUP_TIMEOUT_S = 15.0
PG_USER = "postgres"  # the OS user the server runs as

PG_HBA = """\
# TYPE     DATABASE  USER  ADDRESS       METHOD
hostssl    all       all   127.0.0.1/32  scram-sha-256
hostnossl  all       all   0.0.0.0/0     reject
"""


@dataclass(frozen=True, slots=True)
class PrivatePostgres:
    port: int
    user: str
    password: str
    database: str = "postgres"

    def dsn(
        self,
        *,
        password: str | None = "",
        sslmode: str = "verify-full",
        sslrootcert: Path | None = None,
    ) -> str:
        """``password`` None leaves it out of the DSN (for PGPASSWORD);
        empty means the right one."""
        secret = self.password if password == "" else password
        credentials = self.user if secret is None else f"{self.user}:{quote(secret, safe='')}"
        query = f"sslmode={sslmode}"
        if sslrootcert is not None:
            query += f"&sslrootcert={quote(str(sslrootcert))}"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{self.database}?{query}"


def _bin_dir() -> Path:
    """Debian keeps one folder per major version: take the newest."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql; backing.sh installs it")
    return found[-1]


@contextmanager
def tls_postgres(pki: StorePki, *, user: str, password: str) -> Iterator[PrivatePostgres]:
    bin_dir = _bin_dir()
    account = pwd.getpwnam(PG_USER)
    # Not under pytest's tmp_path: its parents are root's alone, and the
    # postgres user must reach its data directory.
    workdir = Path(tempfile.mkdtemp(prefix="chatmesh-pg-tls-"))
    try:
        data = workdir / "data"
        tls = workdir / "tls"
        tls.mkdir()
        # postgres refuses a key file others can read or that it does not own.
        for source, name in (
            (pki.server.cert_file, "server.crt"),
            (pki.server.key_file, "server.key"),
        ):
            shutil.copyfile(source, tls / name)
        (tls / "server.key").chmod(0o600)
        pwfile = workdir / "pwfile"
        pwfile.write_text(password + "\n")
        for path in (workdir, tls, tls / "server.crt", tls / "server.key", pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                f"--username={user}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",  # throwaway: durability buys nothing here
            ],
            user=account.pw_uid,
            group=account.pw_gid,
            capture_output=True,
            check=True,
        )
        pwfile.unlink()
        (data / "pg_hba.conf").write_text(PG_HBA)
        port = free_port()
        log_path = workdir / "postgres.log"
        with log_path.open("ab") as log:
            os.chown(log_path, account.pw_uid, account.pw_gid)
            process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "ssl=on",
                    "-c",
                    f"ssl_cert_file={tls / 'server.crt'}",
                    "-c",
                    f"ssl_key_file={tls / 'server.key'}",
                    "-c",
                    "fsync=off",
                ],
                user=account.pw_uid,
                group=account.pw_gid,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(bin_dir, port, process, log_path)
            yield PrivatePostgres(port=port, user=user, password=password)
        finally:
            process.send_signal(signal.SIGINT)  # fast shutdown: clients cut off
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(bin_dir: Path, port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited:\n{log_path.read_text(errors='replace')}")
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"postgres not ready on {port}:\n{log_path.read_text(errors='replace')}")
