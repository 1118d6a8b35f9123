"""``workerpool-tui logs ID [-f]`` as a user runs it, against a real ``serve`` running
real shell tasks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Cli, LineReader, run_json
from live_server import LiveServer


@pytest.fixture(scope="module")
def shell_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {"WORKERPOOL__TASK__ALLOW_SHELL": "true"}
    with LiveServer(tmp_path_factory.mktemp("serve-logs"), settings=settings) as live:
        yield live


def _submit(server: LiveServer, command: str) -> str:
    task = run_json(
        "submit", "shell_task", "--payload", f'{{"command": "{command}"}}', "--url", server.url
    )
    task_id: str = task["id"]
    return task_id


def test_logs_follow_prints_lines_live_and_exits_by_outcome(
    shell_server: LiveServer, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    task_id = _submit(
        shell_server,
        f"echo first; while [ ! -e {gate} ]; do sleep 0.02; done; echo second; exit 4",
    )
    url = shell_server.url
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "logs", task_id[:8], "-f", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=shell_server.env(),
    )
    try:
        lines = LineReader(proc)
        lines.wait_for("first")
        assert proc.poll() is None  # still following: the task waits for the gate
        gate.touch()
        lines.wait_for("second")
        assert proc.wait(timeout=15) == 1  # the task failed
        assert proc.stderr is not None and "failed" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_logs_without_follow_and_a_completed_task(cli: Cli, shell_server: LiveServer) -> None:
    task_id = _submit(shell_server, "echo alpha; echo beta")
    done = cli("logs", task_id, "-f", "--url", shell_server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "alpha\nbeta\n"
    again = cli("logs", task_id[:6], "--url", shell_server.url)
    assert again.returncode == 0 and again.stdout == "alpha\nbeta\n"
    page = cli.json("logs", task_id, "--url", shell_server.url)
    assert page["lines"] == ["alpha", "beta"] and page["final"] is True


def test_logs_of_an_unknown_task_is_refused(cli: Cli, shell_server: LiveServer) -> None:
    done = cli("logs", "ffffffffffff", "--url", shell_server.url)
    assert done.returncode == 1 and "not_found" in done.stderr
    assert cli("logs", "ab", "--url", shell_server.url).returncode == 2
