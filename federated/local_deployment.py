"""A Flower deployment on this machine: one SuperLink and one SuperNode per household.

The same processes a multi-machine deployment runs (docs/federated.md), on localhost ports:
``flower-superlink`` (the server side, whose SuperExec starts the ``ServerApp``) and
``flower-supernode`` per household (each starts the ``ClientApp`` for its home). Used by the test
of the ``flwr run`` path and by ``wattshare federated --deploy``. Every process is started in its
own session and stopped by PID, children included, so nothing is left running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

APP_DIR = Path(__file__).parent / "flower_app"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pids: list[int]) -> set[int]:
    """Every live descendant of ``pids`` (read from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), list(pids)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


class LocalDeployment:
    """Start a SuperLink and ``households`` SuperNodes; ``run`` submits the app with ``flwr run``.

    Use as a context manager: leaving it stops every process it started (and their children).

    Args:
        households: SuperNodes to start; node ``i`` gets ``--node-config "partition-id=i ..."``.
        workdir: holds FLWR_HOME (the CLI's SuperLink connection) and the process logs.
        node_config: extra node-config entries every node gets (e.g. ``{"config": "env.yaml"}``).
    """

    def __init__(self, households: int, workdir: Path, node_config: dict[str, object] | None = None) -> None:
        self.households = households
        self.workdir = Path(workdir)
        self.node_config = dict(node_config or {})
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []
        self.bin = Path(sys.executable).parent
        self.env = dict(os.environ)
        self.env.update({
            "FLWR_HOME": str(self.workdir / "flwr_home"),
            # Flower would otherwise pip-install the app's dependencies (a CUDA torch among them).
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "PATH": f"{self.bin}{os.pathsep}{self.env.get('PATH', '')}",  # SuperExec is found on PATH
        })

    def _exe(self, name: str) -> str:
        path = self.bin / name
        found = str(path) if path.exists() else shutil.which(name)
        if not found:
            raise FileNotFoundError(f"{name} not found: install flwr into this environment (pip install 'flwr[dp]')")
        return found

    def _start(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        proc.log_file = log  # type: ignore[attr-defined]
        self.processes.append(proc)
        return proc

    def start(self) -> "LocalDeployment":
        """Write the connection config, start the SuperLink and the SuperNodes."""
        home = self.workdir / "flwr_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "wattshare-local"\n\n'
            f'[superlink.wattshare-local]\naddress = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )
        link = self._start([self._exe("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(self.port)], "superlink.log")
        self._wait_until_listening(link, "superlink.log")
        for i in range(self.households):
            config = " ".join(f"{k}={_toml(v)}" for k, v in {"partition-id": i, **self.node_config}.items())
            self._start([self._exe("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                         "--port", str(free_port()), "--node-config", config], f"supernode_{i}.log")
        return self

    def _wait_until_listening(self, proc: subprocess.Popen, log_name: str, timeout_s: float = 60.0) -> None:
        """Block until the SuperLink accepts connections (``flwr run`` fails fast otherwise)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if proc.poll() is not None:
                tail = (self.workdir / log_name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"flower-superlink exited with {proc.returncode}: {tail}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"flower-superlink did not listen on port {self.port} within {timeout_s:.0f} s")

    def run(self, run_config: dict[str, object], output: Path, timeout_s: float = 300.0, app_dir: Path = APP_DIR) -> Path:
        """``flwr run`` the app with ``run_config`` (output-dir set to ``output``); wait for its summary."""
        overrides = {**run_config, "households": self.households, "output-dir": str(output)}
        args = [self._exe("flwr"), "run", str(app_dir), "wattshare-local", "--stream",
                "--run-config", " ".join(f"{k}={_toml(v)}" for k, v in overrides.items())]
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout_s, check=False)
        (self.workdir / "flwr_run.log").write_text(done.stdout + done.stderr)
        summary = Path(output) / "summary.json"
        if done.returncode != 0 or not summary.exists():
            raise RuntimeError(f"flwr run failed (exit {done.returncode}); see {self.workdir}: {done.stderr[-2000:]}")
        return summary

    def stop(self) -> None:
        """Stop every process started here, and their children, by PID."""
        pids = [p.pid for p in self.processes]
        victims = set(pids) | _descendants(pids)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 10
            for proc in self.processes:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    pass
            victims = {pid for pid in victims if _alive(pid)}
            if not victims:
                break
        for proc in self.processes:
            proc.log_file.close()  # type: ignore[attr-defined]
        self.processes.clear()

    def __enter__(self) -> "LocalDeployment":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "") + "'"
    return repr(value)
