"""``serve`` as a user runs it: its log lines on a pipe (issue #10 §6) and ``--store``
(issue #10 §5), in real subprocesses."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from cli_helpers import LineReader, run
from live_server import LiveServer, free_port, isolated_env

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def serve(home: Path, *argv: str, store: Path) -> subprocess.Popen[str]:
    """``serve ARGV`` with ``store.path`` set in the environment, logging at info."""
    env = isolated_env(home)
    env["WORKERPOOL__STORE__PATH"] = f'"{store}"'
    return subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "serve", "--log-level", "info", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
    )


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=10)


def test_serve_logs_one_record_a_line_to_a_pipe(tmp_path: Path) -> None:
    """Without a terminal, no 80-column wrapping: each record is one line, durations
    included. (No COLUMNS in the environment: what a pipe under a service manager gets.)"""
    port = free_port()
    env = isolated_env(tmp_path)
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "serve", "--port", str(port), "--store", ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "WORKERPOOL__LOGGER__LEVEL": '"info"'},
        cwd=tmp_path,
    )
    try:
        lines = LineReader(proc)
        lines.wait_for(f"API listening on http://127.0.0.1:{port}")
        long_path = "/api/v1/tasks/" + "x" * 120
        assert httpx.get(f"http://127.0.0.1:{port}{long_path}", timeout=10).status_code == 404
        logged = lines.wait_for(long_path)
        assert re.search(r'" 404 \d+ \d+\.\dms$', logged), logged
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        lines.wait_for("stopped")
        for line in lines.seen:
            assert RECORD.match(line), lines.seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_second_serve_on_the_same_store_is_told_about_store(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    with LiveServer(tmp_path, settings={"WORKERPOOL__STORE__PATH": f'"{db}"'}) as live:
        assert live.proc is not None
        for argv in (
            ["serve", "--port", str(free_port())],
            ["--no-server"],  # the dashboard: refused before it takes the terminal
        ):
            done = run(*argv, "--store", str(db), home=tmp_path)
            assert done.returncode == 2, done.stderr
            assert done.stderr == (
                f"error: store {db} is in use by process {live.proc.pid};"
                ' use --store PATH for another store, or --store "" for memory only\n'
            )
        # What the hint says: --store "" runs beside it (the flag beats the environment).
        port = free_port()
        proc = serve(tmp_path, "--port", str(port), "--store", "", store=db)
        try:
            LineReader(proc).wait_for(f"API listening on http://127.0.0.1:{port}")
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        finally:
            stop(proc)


def test_store_flag_picks_the_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    proc = serve(tmp_path, "--no-server", "--store", str(other), store=tmp_path / "config.db")
    try:
        LineReader(proc).wait_for("API: disabled")
        assert other.exists()
        assert not (tmp_path / "config.db").exists()
    finally:
        stop(proc)


def test_store_url_schemes_other_than_postgresql_are_refused(tmp_path: Path) -> None:
    other = run("serve", "--store", "mysql://db/x", home=tmp_path)
    assert other.returncode == 2
    assert "unsupported URL scheme 'mysql'" in other.stderr
