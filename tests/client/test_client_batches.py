"""``submit --count`` above the server's batch limit (issue #10 §5): several batches, and an
honest report when one of them is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import Cli
from live_server import LiveServer

from workerpool_tui.client.submit import BATCH_MAX
from workerpool_tui.server.limits import MAX_BATCH_TASKS


@pytest.fixture(scope="module")
def paused_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Room for 1,500 queued tasks, bodies of at most 64 KiB, and a paused pool, so that
    what was submitted stays queued and countable."""
    settings = {
        "WORKERPOOL__TASK__QUEUE_CAPACITY": "1500",
        "WORKERPOOL__SERVER__MAX_BODY_BYTES": "65536",
    }
    with LiveServer(tmp_path_factory.mktemp("paused"), settings=settings) as live:
        httpx.patch(f"{live.url}/api/v1/pool", json={"paused": True}, timeout=10)
        yield live


@pytest.fixture(scope="module")
def roomy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {"WORKERPOOL__TASK__QUEUE_CAPACITY": "3000"}
    with LiveServer(tmp_path_factory.mktemp("roomy"), settings=settings) as live:
        yield live


def queued(server: LiveServer) -> int:
    stats = httpx.get(f"{server.url}/api/v1/tasks/status/stats", timeout=10).json()
    return int(stats["tasks"]["pending"])


def test_the_client_batch_is_the_server_limit() -> None:
    assert BATCH_MAX == MAX_BATCH_TASKS


def test_a_count_over_the_batch_limit_is_sent_in_batches(
    cli: Cli, roomy_server: LiveServer
) -> None:
    done = cli("submit", "default_task", "--count", "2500", "--json", "--url", roomy_server.url)
    assert done.returncode == 0, done.stderr
    tasks = json.loads(done.stdout)["tasks"]
    assert len(tasks) == 2500
    assert len({t["id"] for t in tasks}) == 2500


def test_a_refused_batch_stops_the_rest_and_says_what_was_created(
    cli: Cli, paused_server: LiveServer
) -> None:
    """1,000 copies of a 100-byte payload do not fit in 64 KiB: the batch is halved until
    they do (413 created nothing). Then the queue fills at 1,500: the last batch is refused,
    the 1,500 created stay, and one line says so; exit 1."""
    before = queued(paused_server)
    payload = json.dumps({"pad": "x" * 100})
    done = cli(
        "submit",
        "default_task",
        "--payload",
        payload,
        "--count",
        "2000",
        "--json",
        "--url",
        paused_server.url,
    )
    assert done.returncode == 1
    created = json.loads(done.stdout)["tasks"]
    room = 1500 - before
    assert len(created) == room
    assert queued(paused_server) == 1500
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: created {room} of 2000 tasks; the other {2000 - room}")
    assert "queue_full" in lines[0]

    human = cli("submit", "default_task", "--count", "3", "--url", paused_server.url)
    assert human.returncode == 1
    assert "queue_full" in human.stderr
    assert "created" not in human.stderr  # nothing was: the plain refusal


def test_count_help_states_the_batch_rule(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli("submit", "--help")
    out = capsys.readouterr().out
    assert "batches of at most 1000" in " ".join(out.split())


def test_count_bounds_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    for count in ("0", "10001"):
        done = cli("submit", "default_task", "--count", count, "--url", "http://127.0.0.1:9")
        assert done.returncode == 2
        assert "--count: must be between 1 and 10000" in done.stderr
