"""``schedules`` and ``schedule add|pause|resume|run|delete`` against a real server."""

from __future__ import annotations

import io

from cli_helpers import Cli
from live_server import LiveServer
from rich.console import Console

from workerpool_tui.client.render import stats_view


def test_schedule_commands(cli: Cli, server: LiveServer) -> None:
    url = ("--url", server.url)
    made = cli.json(
        "schedule",
        "add",
        "cli-tick",
        "default_task",
        "--every",
        "5m",
        "--payload",
        '{"n": 1}',
        *url,
    )
    assert made["every"] == 300 and made["payload"] == {"n": 1} and made["source"] == "api"
    listed = cli.json("schedules", *url)["schedules"]
    assert "cli-tick" in [s["name"] for s in listed]
    assert cli.json("schedule", "pause", "cli-tick", *url)["paused"] is True
    assert cli.json("schedule", "resume", "cli-tick", *url)["paused"] is False
    ran = cli.json("schedule", "run", "cli-tick", *url)
    assert ran["task_id"] and ran["schedule"]["last_task_id"] == ran["task_id"]
    table = cli("schedules", *url)
    assert table.returncode == 0 and "cli-tick" in table.stdout and "every 300s" in table.stdout
    assert cli.json("schedule", "delete", "cli-tick", *url)["name"] == "cli-tick"
    gone = cli("schedule", "run", "cli-tick", *url)
    assert gone.returncode == 1 and "not_found" in gone.stderr


def test_schedule_add_usage_errors(cli: Cli, server: LiveServer) -> None:
    url = ("--url", server.url)
    assert cli("schedule", "add", "x", *url).returncode == 2
    assert cli("schedule", "add", "x", "default_task", *url).returncode == 2
    bad = cli("schedule", "add", "x", "default_task", "--cron", "99 * * * *", *url)
    assert bad.returncode == 1 and "cron" in bad.stderr


def test_stats_show_scheduled_and_blocked_only_when_there_are_some() -> None:
    def text(tasks: dict[str, int]) -> str:
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(stats_view({"tasks": tasks}))
        return console.export_text()

    quiet = text({"total": 1, "pending": 1})
    assert "SCHEDULED" not in quiet
    busy = text({"total": 3, "pending": 1, "scheduled": 1, "blocked": 1})
    assert "SCHEDULED" in busy and "BLOCKED" in busy
