"""A real ``workerpool-tui serve`` in a subprocess on a free loopback port, for end-to-end tests.

Used by the client and web-page tests. The process gets an isolated HOME, an in-memory
store and a short shutdown grace; it is always stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def isolated_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment for a subprocess: no developer config, HOME in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / "data")
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    env.update(settings)
    return env


class LiveServer:
    def __init__(
        self,
        workdir: Path,
        *,
        token: str = "",
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.token = token
        self.settings = settings or {}
        """Extra ``WORKERPOOL__SECTION__KEY`` values (TOML syntax)."""
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        settings = {
            "WORKERPOOL__STORE__PATH": '""',
            "WORKERPOOL__WORKER__SHUTDOWN_TIMEOUT": '"1s"',
            "WORKERPOOL__WORKER__MIN_WORKERS": "4",
        }
        if self.token:
            settings["WORKERPOOL__SERVER__AUTH_TOKEN"] = f'"{self.token}"'
        settings.update(self.settings)
        return isolated_env(self.workdir, **settings)

    def start(self) -> LiveServer:
        assert self.proc is None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "workerpool_tui",
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=self.workdir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serve did not answer within {READY_TIMEOUT_S}s: {self.log()}")

    def stop(self) -> int | None:
        """SIGTERM and wait (the graceful path); SIGKILL if it hangs. Returns the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        return proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
