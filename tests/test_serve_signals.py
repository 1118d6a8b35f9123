"""``serve`` owns SIGINT/SIGTERM from before it starts: a signal that arrives while it is
starting or right as it says it listens stops it gracefully (exit 0), never kills it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import isolated_env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_right_after_start_up_is_a_graceful_stop(tmp_path: Path, sig: int) -> None:
    env = isolated_env(tmp_path, WORKERPOOL__STORE__PATH='""', WORKERPOOL__LOGGER__LEVEL='"info"')
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "API listening on" in line:
                proc.send_signal(sig)  # the very moment it is up
                break
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out
