"""A throw-away PostgreSQL server for the tests (not a test module).

:func:`dsn_or_start` returns a DSN: ``$WATTSHARE_TEST_PG_DSN`` if set (e.g. by ``.ci/postgres.sh``),
else a server this process starts with ``initdb`` / ``pg_ctl`` from Debian's ``postgresql`` package
(``/usr/lib/postgresql/*/bin``) in a temporary directory, on a free port of 127.0.0.1, with trust
authentication. As root it runs them as the ``postgres`` user (``initdb`` refuses root). The server
is stopped, and its directory removed, by :meth:`ThrowawayServer.stop` (also registered with
``atexit``), so no process is left behind.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

HOW_TO_GET = (
    "install Debian's PostgreSQL (apt-get install -y postgresql) so the tests can start a throw-away server, "
    "or set WATTSHARE_TEST_PG_DSN=postgresql://user@host:port/db (e.g. eval \"$(.ci/postgres.sh start)\")"
)


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, or the PATH's."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    for d in reversed(candidates):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayServer:
    """A PostgreSQL cluster in a temp dir; :meth:`start` returns its DSN."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="wattshare-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.started = False
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user to run initdb as") from None
            self.run_as = "postgres"
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)

    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        full = [str(self.bin_dir / cmd[0]), *cmd[1:]]
        if self.run_as:
            full = ["runuser", "-u", self.run_as, "--", *full]
        return subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def start(self) -> str:
        r = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-500:]}")
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"  # a throw-away cluster: speed over safety
        )
        r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "-t", "60", "start")
        if r.returncode:
            log = (self.root / "server.log").read_text()[-800:] if (self.root / "server.log").exists() else ""
            self.stop()
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()[-500:]} {log}")
        self.started = True
        atexit.register(self.stop)
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


def start_throwaway() -> tuple[ThrowawayServer | None, str]:
    """Start a server. Returns ``(server, dsn)``, or ``(None, reason)`` when that is not possible here."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return None, "no initdb / pg_ctl found (PostgreSQL is not installed)"
    try:
        server = ThrowawayServer(bin_dir)
    except (RuntimeError, OSError) as err:
        return None, str(err)
    try:
        return server, server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        server.stop()
        return None, str(err)
