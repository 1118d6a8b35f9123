"""``cancel``/``retry`` with a filter and ``clean``: what they would do, the confirmation,
and the change, against a real ``serve``."""

from __future__ import annotations

import builtins
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cli_helpers import Cli
from live_server import LiveServer


@pytest.fixture(scope="module")
def bulk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("serve-bulk")) as live:
        yield live


def _api(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def _counts(server: LiveServer) -> dict[str, int]:
    with _api(server) as c:
        counts: dict[str, int] = c.get("/api/v1/tasks/status/stats").json()["tasks"]
        return counts


def _submit(server: LiveServer, tasks: list[dict[str, Any]]) -> None:
    with _api(server) as c:
        assert c.post("/api/v1/tasks/batch", json={"tasks": tasks}).status_code == 201


def _wait_counts(server: LiveServer, **want: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        counts = _counts(server)
        if all(counts[k] == v for k, v in want.items()):
            return
        assert time.monotonic() < deadline, counts
        time.sleep(0.05)


def test_bulk_cancel_retry_clean(
    cli: Cli, bulk_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = bulk_server.url
    with _api(bulk_server) as c:
        c.patch("/api/v1/pool", json={"paused": True})
    _submit(bulk_server, [{"type": "long_running_task"}] * 3 + [{"type": "default_task"}] * 2)

    # Not a terminal and no --yes: it says what it would do and refuses.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    refused = cli("cancel", "--status", "pending", "--type", "long_running_task", "--url", url)
    assert refused.returncode == 2
    assert "would cancel 3 of 3 task(s)" in refused.stderr and "--yes" in refused.stderr

    # A terminal: the answer decides.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", lambda prompt="": "n")
    declined = cli("cancel", "--type", "long_running_task", "--url", url)
    assert declined.returncode == 1 and "nothing changed" in declined.stderr
    assert _counts(bulk_server)["pending"] == 5
    monkeypatch.setattr(builtins, "input", lambda prompt="": "y")
    done = cli("cancel", "--type", "long_running_task", "--url", url)
    assert done.returncode == 0, done.stderr
    assert "cancelled 3 of 3 matched" in done.stdout
    assert _counts(bulk_server)["cancelled"] == 3

    # Nothing left to cancel of that type: exit 0, nothing asked.
    again = cli("cancel", "--type", "long_running_task", "--url", url)
    assert again.returncode == 0 and "nothing to cancel" in again.stderr

    # Retry the cancelled ones (--yes), as JSON.
    result = cli.json("retry", "--status", "cancelled", "--yes", "--url", url)
    assert result == {"matched": 3, "changed": 3, "skipped": {}}
    assert _counts(bulk_server)["pending"] == 5

    # Clean: only final tasks go; the default statuses are the final ones.
    with _api(bulk_server) as c:
        c.patch("/api/v1/pool", json={"paused": False})
    cancel_all = cli("cancel", "--type", "long_running_task", "--yes", "--url", url)
    assert cancel_all.returncode == 0
    _wait_counts(bulk_server, pending=0, running=0)
    young = cli("clean", "--older-than", "1h", "--yes", "--url", url)
    assert young.returncode == 0 and "nothing to delete" in young.stderr
    cleaned = cli("clean", "--yes", "--url", url)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "deleted 8 of 8 matched" in cleaned.stdout
    assert _counts(bulk_server)["total"] == 0


def test_bulk_usage_errors(cli: Cli, bulk_server: LiveServer) -> None:
    url = bulk_server.url
    both = cli("cancel", "abcdef12", "--status", "pending", "--url", url)
    assert both.returncode == 2 and "not both" in both.stderr
    neither = cli("cancel", "--url", url)
    assert neither.returncode == 2 and "a filter" in neither.stderr
    bad = cli("clean", "--status", "sleeping", "--url", url)
    assert bad.returncode == 2 and "--status" in bad.stderr
    age = cli("clean", "--older-than", "soon", "--url", url)
    assert age.returncode == 2 and "--older-than" in age.stderr
    wait = cli("retry", "--status", "failed", "--wait", "--url", url)
    assert wait.returncode == 2 and "--wait" in wait.stderr
