"""Ids as the dashboard shows them (issue #10 §5): ``get``, ``cancel`` and the new ``retry``
take a unique prefix of 4+ characters; an ambiguous one lists the candidates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from cli_helpers import Cli
from live_server import LiveServer


@pytest.fixture(scope="module")
def crowded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server holding 3,000 finished tasks: some 4-character id prefixes are shared
    (about 68 pairs expected among 3,000 random 64-bit ids; none at all: odds of e^-68)."""
    settings = {"WORKERPOOL__TASK__QUEUE_CAPACITY": "3000"}
    with LiveServer(tmp_path_factory.mktemp("crowded"), settings=settings) as live:
        yield live


def test_get_cancel_and_retry_take_the_dashboard_short_id(cli: Cli, server: LiveServer) -> None:
    done = cli.json(
        "submit", "default_task", "--payload", '{"short": "id"}', "--wait", "--url", server.url
    )
    short = done["id"][:8]

    shown = cli("get", short, "--url", server.url)
    assert shown.returncode == 0, shown.stderr
    assert done["id"] in shown.stdout

    retried = cli.json("retry", short, "--wait", "--url", server.url)
    assert retried["retry_of"] == done["id"]
    assert retried["id"] != done["id"]
    assert retried["status"] == "completed"
    assert retried["payload"] == {"short": "id"}

    human = cli("retry", done["id"][:4] + done["id"][4:10], "--url", server.url)
    assert human.returncode == 0, human.stderr
    assert f"retried {done['id']} as " in human.stdout

    running = cli.json(
        "submit", "long_running_task", "--payload", '{"duration": 30}', "--url", server.url
    )
    cancelled = cli.json("cancel", running["id"][:8], "--url", server.url)
    assert (cancelled["id"], cancelled["status"]) == (running["id"], "cancelled")


def test_an_ambiguous_prefix_lists_the_candidates(cli: Cli, crowded_server: LiveServer) -> None:
    url = crowded_server.url
    created = cli.json("submit", "default_task", "--count", "3000", "--url", url)["tasks"]
    ids = [t["id"] for t in created]
    prefix, n = Counter(i[:4] for i in ids).most_common(1)[0]
    assert n >= 2, "no shared 4-character prefix among 3,000 ids"
    matching = sorted(i for i in ids if i.startswith(prefix))
    for command in ("get", "cancel", "retry"):
        done = cli(command, prefix, "--url", url)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert lines[0] == (
            f"error: more than one task id starts with '{prefix}' (ambiguous_id, HTTP 409);"
            " give more characters of one of:"
        )
        listed = sorted(line.strip() for line in lines[1:])
        assert set(listed) <= set(matching)
        assert len(listed) == min(len(matching), 10)
    one = cli.json("get", matching[0][:12], "--url", url)
    assert one["id"] == matching[0]


@pytest.mark.parametrize("command", ["get", "cancel", "retry"])
def test_an_id_shorter_than_4_characters_is_a_usage_error(cli: Cli, command: str) -> None:
    done = cli(command, "abc", "--url", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: ID: 'abc' is too short: give the task id or its first 4 or more characters"
    )


def test_an_unknown_prefix_is_not_found(cli: Cli, server: LiveServer) -> None:
    done = cli("retry", "zzzz", "--url", server.url)
    assert done.returncode == 1
    assert "not_found" in done.stderr
    assert "'zzzz'" in done.stderr
