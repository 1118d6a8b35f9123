"""Worker processes of a real ``serve`` (issue #13): none is left behind after a
``kill -9`` of the server (each dies with its parent), nor after a graceful stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from live_server import isolated_env

HANDLERS = """
import os
import time
from pathlib import Path


def spin(ctx, payload):
    Path(f"started-{os.getpid()}").touch()
    time.sleep(3600)
"""

CONFIG = """
[store]
path = ""

[worker]
processes = 2
shutdown_timeout = "1s"

[task.handlers]
spin = "exec_serve_handlers:spin"

[task.types.spin]
isolation = "process"
"""


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(p) for p in path.read_text().split())
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait(predicate: object, what: str, deadline_s: float = 20.0) -> None:
    assert callable(predicate)
    end = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int]]:
    (tmp_path / "exec_serve_handlers.py").write_text(HANDLERS)
    (tmp_path / "config.toml").write_text(CONFIG)
    env = isolated_env(tmp_path, WORKERPOOL__LOGGER__LEVEL='"info"')
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        if "API listening on" in line:
            url = re.search(r"http://[0-9.:]+", line).group(0)  # type: ignore[union-attr]
            break
    # Two busy children: idle ones would also go at the end of their socket; busy ones
    # read nothing, and only the kernel (PR_SET_PDEATHSIG) can end them with the server.
    for _ in range(2):
        request = urllib.request.Request(
            f"{url}/api/v1/tasks",
            data=json.dumps({"type": "spin"}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
    workers: set[int] = set()

    def found() -> bool:
        workers.update(
            p for p in _children(proc.pid) if "workerpool_tui.core.procpool.child" in _cmdline(p)
        )
        return len(workers) == 2

    _wait(found, "two worker processes")
    _wait(
        lambda: all((tmp_path / f"started-{pid}").exists() for pid in workers),
        "both to be in the handler",
    )
    return proc, workers


@pytest.mark.parametrize("how", ["kill -9", "SIGINT"])
def test_no_worker_process_outlives_serve(tmp_path: Path, how: str) -> None:
    proc, workers = _start(tmp_path)
    try:
        for pid in workers:  # each in a session of its own: a terminal's Ctrl-C skips it
            assert os.getsid(pid) == pid != os.getsid(proc.pid)
        proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        _wait(lambda: not any(_alive(p) for p in workers), "the worker processes to die")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    if how == "SIGINT":
        assert proc.returncode == 0, out
