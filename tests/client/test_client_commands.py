"""The client commands, run as a user runs them, against a real ``serve`` on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import Cli, LineReader, run, run_json
from live_server import LiveServer, free_port, isolated_env


def test_submit_wait_returns_the_completed_task(server: LiveServer) -> None:
    task = run_json(
        "submit", "default_task", "--payload", '{"b": 1, "a": [2]}', "--wait", "--url", server.url
    )
    assert task["status"] == "completed"
    assert task["result"]["payload"] == {"a": [2], "b": 1}
    assert task["result"]["size"] == len('{"a":[2],"b":1}')


def test_submit_wait_exits_1_when_a_task_fails(cli: Cli, server: LiveServer) -> None:
    done = cli(
        "submit", "default_task", "--payload", '{"fail": true}', "--wait", "--url", server.url
    )
    assert done.returncode == 1
    assert "failed" in done.stdout
    assert "DemoFailure" in done.stderr


def test_submit_wait_reports_a_timeout(cli: Cli, server: LiveServer) -> None:
    done = cli(
        "--url",
        server.url,
        "submit",
        "long_running_task",
        "--payload",
        '{"duration": 20, "steps": 20}',
        "--timeout",
        "300ms",
        "--wait",
        "--json",
    )
    assert done.returncode == 1
    task = json.loads(done.stdout)
    assert task["status"] == "failed"
    assert task["error"]["type"] == "timeout"


def test_count_submits_a_batch_and_list_shows_full_ids(cli: Cli, server: LiveServer) -> None:
    created = cli.json(
        "submit",
        "default_task",
        "--payload",
        '{"batch": "list"}',
        "--count",
        "3",
        "--priority",
        "7",
        "--url",
        server.url,
    )["tasks"]
    ids = {t["id"] for t in created}
    assert len(ids) == 3
    assert all(t["priority"] == 7 for t in created)

    listed = cli.json("list", "--type", "default_task", "--url", server.url)
    assert ids <= {t["id"] for t in listed["tasks"]}
    assert listed["total"] >= 3

    table = cli("list", "--type", "default_task", "--url", server.url)
    assert table.returncode == 0, table.stderr
    for task_id in ids:
        assert task_id in table.stdout  # full ids, never shortened
    assert "newest first" in table.stdout

    only_failed = cli.json("list", "--status", "failed", "--url", server.url)
    assert all(t["status"] == "failed" for t in only_failed["tasks"])


def test_get_shows_one_task_and_a_missing_one_is_refused(cli: Cli, server: LiveServer) -> None:
    task = cli.json(
        "submit", "default_task", "--payload", '{"shown": "in get"}', "--wait", "--url", server.url
    )
    shown = cli("get", task["id"], "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert task["id"] in shown.stdout
    assert '"shown": "in get"' in shown.stdout
    assert "completed" in shown.stdout

    missing = cli("get", "no-such-task", "--url", server.url)
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    assert missing.stdout == ""


def test_cancel_a_running_task_then_again(cli: Cli, server: LiveServer) -> None:
    task = cli.json(
        "submit",
        "long_running_task",
        "--payload",
        '{"duration": 30, "steps": 300}',
        "--url",
        server.url,
    )
    cancelled = cli.json("cancel", task["id"], "--url", server.url)
    assert cancelled["id"] == task["id"]
    assert cancelled["status"] == "cancelled"

    again = cli("cancel", task["id"], "--url", server.url)
    assert again.returncode == 1
    assert "already_finished" in again.stderr


def test_stats_human_and_json(cli: Cli, server: LiveServer) -> None:
    stats = cli.json("stats", "--url", server.url)
    assert {"tasks", "queue", "workers", "throughput", "latency", "uptime_s"} <= set(stats)
    human = cli("stats", "--url", server.url)
    assert human.returncode == 0
    assert "workers" in human.stdout and "queue" in human.stdout


def test_unknown_type_is_the_server_saying_no(cli: Cli, server: LiveServer) -> None:
    done = cli("submit", "no_such_type", "--url", server.url)
    assert done.returncode == 1
    assert "unknown_task_type" in done.stderr


BAD_USAGE = [
    ["submit", "default_task", "--payload", "[1, 2]"],
    ["submit", "default_task", "--timeout", "soon"],
    ["submit", "default_task", "--count", "0"],
    ["submit", "default_task", "--max-retries", "-1"],
    ["submit", "default_task", "--priority", "high"],
    ["list", "--status", "finished"],
    ["submit"],
    ["get"],
    ["stats", "--url", "ftp://example"],
]


def test_bad_usage_is_one_line_exit_2_and_changes_nothing(
    cli: Cli, server: LiveServer, tmp_path: Path
) -> None:
    before = cli.json("stats", "--url", server.url)["tasks"]["total"]
    as_user = run(
        "submit", "default_task", "--payload", "{not json", "--url", server.url, home=tmp_path
    )
    assert as_user.returncode == 2
    assert as_user.stderr.startswith("error: --payload: not valid JSON")
    for argv in BAD_USAGE:
        done = cli(*argv, "--url", server.url) if "--url" not in argv else cli(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
        assert "Traceback" not in done.stderr
    assert cli.json("stats", "--url", server.url)["tasks"]["total"] == before


def test_no_server_exits_3_with_the_hint(cli: Cli, tmp_path: Path) -> None:
    port = free_port()
    hint = f"no server at http://127.0.0.1:{port} — start one with `workerpool-tui serve`"
    as_user = run("stats", "--port", str(port), home=tmp_path)
    assert as_user.returncode == 3
    assert hint in as_user.stderr
    for command in (["watch"], ["submit", "example_task"], ["cancel", "abcd"], ["retry", "abcd"]):
        done = cli(*command, "--port", str(port))
        assert done.returncode == 3, (command, done.stderr)
        assert hint in done.stderr


def test_default_url_comes_from_the_config(cli: Cli, server: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f"[server]\nport = {server.port}\n")
    done = cli("stats", "--json", "--config", str(tmp_path / "config.toml"))
    assert done.returncode == 0, done.stderr
    assert "workers" in json.loads(done.stdout)


def test_token_from_option_or_environment(
    cli: Cli, auth_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = cli("list", "--url", auth_server.url)
    assert refused.returncode == 1
    assert "unauthorized" in refused.stderr

    wrong = cli("--token", "nope", "stats", "--url", auth_server.url)
    assert wrong.returncode == 1

    ok = cli("--token", auth_server.token, "list", "--url", auth_server.url)
    assert ok.returncode == 0, ok.stderr

    monkeypatch.setenv("WORKERPOOL_TOKEN", auth_server.token)
    from_env = cli("stats", "--json", "--url", auth_server.url)
    assert from_env.returncode == 0, from_env.stderr


def test_watch_refused_without_token(cli: Cli, auth_server: LiveServer) -> None:
    done = cli("watch", "--url", auth_server.url)
    assert done.returncode == 1
    assert "unauthorized" in done.stderr


@pytest.mark.parametrize("as_json", [False, True])
def test_watch_prints_events_until_ctrl_c(
    server: LiveServer, tmp_path: Path, as_json: bool
) -> None:
    argv = [sys.executable, "-m", "workerpool_tui", "watch", "--url", server.url]
    if as_json:
        argv.append("--json")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        lines = LineReader(proc)
        lines.wait_for("snapshot")
        task = httpx.post(
            f"{server.url}/api/v1/tasks",
            json={"type": "default_task", "payload": {"watched": True}},
            timeout=10,
        ).json()
        if as_json:
            line = lines.wait_for('"event":"completed"', task["id"])
            message = json.loads(line)
            assert message["type"] == "task"
            assert message["task"]["result"]["payload"] == {"watched": True}
        else:
            lines.wait_for("created", task["id"], "default_task")
            lines.wait_for("completed", task["id"], "default_task")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_watch_lines_up_and_prints_each_end_once(server: LiveServer, tmp_path: Path) -> None:
    """Issue #10 §5: columns line up across task types, and a completion is one line (no
    ``progress 100%`` line before it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "watch", "--url", server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        lines = LineReader(proc)
        lines.wait_for("snapshot")
        ids = [
            httpx.post(f"{server.url}/api/v1/tasks", json=body, timeout=10).json()["id"]
            for body in (
                {"type": "example_task"},
                {"type": "long_running_task", "payload": {"duration": 1, "steps": 4}},
            )
        ]
        for task_id in ids:
            lines.wait_for("completed", task_id)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    mine = [line for line in lines.seen if any(i in line for i in ids)]
    for task_id in ids:
        of_task = [line.split()[1] for line in mine if task_id in line]
        assert of_task.count("completed") == 1, mine
        assert of_task[0] == "created" and of_task[-1] == "completed", mine
        assert "progress" in of_task, mine  # 25%, 50%, 75% (100% is the "completed" line)
    assert not [line for line in mine if "progress" in line and "100%" in line], mine
    columns = {m.end() for m in (re.match(r"(\S+\s+){4}", line) for line in mine) if m}
    assert len(columns) == 1, mine


def test_watch_exits_3_when_the_server_goes_away(tmp_path: Path) -> None:
    live = LiveServer(tmp_path).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "watch", "--url", live.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        LineReader(proc).wait_for("snapshot")
        assert live.stop() == 0
        assert proc.wait(timeout=15) == 3
        assert proc.stderr is not None
        assert "the server closed the stream (1001" in proc.stderr.read()
    finally:
        live.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_ctrl_c_stops_waiting_and_leaves_the_task_running(
    server: LiveServer, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workerpool_tui",
            "submit",
            "long_running_task",
            "--payload",
            '{"duration": 30}',
            "--wait",
            "--json",
            "--url",
            server.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=isolated_env(tmp_path),
        cwd=tmp_path,
    )
    running: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 15
        while not running and time.monotonic() < deadline:
            listed = httpx.get(
                f"{server.url}/api/v1/tasks",
                params={"type": "long_running_task", "status": "running"},
                timeout=10,
            ).json()["tasks"]
            running = [t for t in listed if t["payload"] == {"duration": 30}]
            time.sleep(0.05)
        assert running, "the submitted task never ran"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert proc.stderr is not None
        assert "the tasks keep running" in proc.stderr.read()
        task = httpx.get(f"{server.url}/api/v1/tasks/{running[0]['id']}", timeout=10).json()
        assert task["status"] == "running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for t in running:
            httpx.delete(f"{server.url}/api/v1/tasks/{t['id']}", timeout=30)
