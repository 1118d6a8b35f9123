"""The client's pieces that need no server: URL parsing, error decoding, rendering."""

from __future__ import annotations

import argparse
import re

import pytest
from rich.console import Console

from workerpool_tui.client.api import (
    ApiError,
    ClientUsageError,
    ServerUrl,
    Unrecognised,
    decode_response,
    task_path,
)
from workerpool_tui.client.client import default_url, resolve_token
from workerpool_tui.client.events import EventLines
from workerpool_tui.client.render import human_seconds, task_detail, task_table
from workerpool_tui.client.submit import submission
from workerpool_tui.config import load_config

TASK = {
    "id": "0123456789abcdef",
    "type": "default_task",
    "status": "failed",
    "payload": {"x": 1},
    "priority": 2,
    "progress": 40.0,
    "message": "step 2/5",
    "result": None,
    "error": {"type": "DemoFailure", "message": "boom", "traceback": "Traceback ...\nboom"},
    "attempts": 1,
    "max_retries": 0,
    "timeout_s": 30.0,
    "created_at": "2026-11-28T13:00:00.000Z",
    "started_at": "2026-11-28T13:00:01.000Z",
    "finished_at": "2026-11-28T13:00:03.500Z",
    "worker": 3,
    "retry_of": None,
    "logs": ["first line", "second line"],
}


def text_of(renderable: object) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize(
    ("url", "host", "port", "prefix"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1", 8080, ""),
        ("http://localhost:9000/", "localhost", 9000, ""),
        ("http://[::1]:8080/pool/", "::1", 8080, "/pool"),
        ("http://example.internal", "example.internal", 80, ""),
    ],
)
def test_server_url_parses(url: str, host: str, port: int, prefix: str) -> None:
    parsed = ServerUrl.parse(url)
    assert (parsed.host, parsed.port, parsed.prefix) == (host, port, prefix)


@pytest.mark.parametrize(
    "url",
    ["https://x:1", "ftp://x", "127.0.0.1:8080", "http://:80", "http://x:99999", "http://x/?a=1"],
)
def test_server_url_refuses(url: str) -> None:
    with pytest.raises(ClientUsageError, match="--url"):
        ServerUrl.parse(url)


def test_default_url_and_token_from_config() -> None:
    cfg = load_config(None, overrides={"server": {"host": "0.0.0.0", "port": 9123}})
    assert default_url(cfg) == "http://127.0.0.1:9123"
    cfg6 = load_config(None, overrides={"server": {"host": "::1", "port": 1}})
    assert default_url(cfg6) == "http://[::1]:1"
    args = argparse.Namespace(token=None)
    with_token = load_config(None, overrides={"server": {"auth_token": "from-config"}})
    assert resolve_token(args, with_token, {}) == "from-config"
    assert resolve_token(args, with_token, {"WORKERPOOL_TOKEN": "env"}) == "env"
    assert (
        resolve_token(argparse.Namespace(token="opt"), with_token, {"WORKERPOOL_TOKEN": "env"})
        == "opt"
    )


def test_task_ids_cannot_change_the_route() -> None:
    assert task_path("../status/stats") == "/api/v1/tasks/..%2Fstatus%2Fstats"
    assert task_path("a b?c#d") == "/api/v1/tasks/a%20b%3Fc%23d"


def test_error_bodies_are_decoded() -> None:
    with pytest.raises(ApiError) as err:
        decode_response(
            409, "Conflict", b'{"error": {"code": "already_finished", "message": "no"}}'
        )
    assert (err.value.status, err.value.code, err.value.message) == (409, "already_finished", "no")
    assert err.value.candidates == []
    with pytest.raises(ApiError) as err:
        decode_response(
            409,
            "Conflict",
            b'{"error": {"code": "ambiguous_id", "message": "m", "candidates": ["ab12", "ab13"]}}',
        )
    assert err.value.candidates == ["ab12", "ab13"]
    assert decode_response(200, "OK", b'{"a": 1}', ("a",)) == {"a": 1}


@pytest.mark.parametrize(
    ("status", "body", "expect", "what"),
    [
        (502, b"<html>proxy</html>", (), "HTTP 502 Bad Gateway"),
        (404, b'{"detail": "Not Found"}', (), "HTTP 404 Bad Gateway"),
        (404, b'{"error": "nope"}', (), "HTTP 404 Bad Gateway"),
        (404, b'{"error": {"code": 1, "message": "m"}}', (), "HTTP 404 Bad Gateway"),
        (200, b"<html>", (), "HTTP 200 with a body that is not a JSON object"),
        (200, b"[1, 2]", (), "HTTP 200 with a body that is not a JSON object"),
        (200, b'{"a": 1}', ("tasks", "total"), "HTTP 200 without tasks, total"),
    ],
)
def test_answers_without_the_workerpool_shape_are_unrecognised(
    status: int, body: bytes, expect: tuple[str, ...], what: str
) -> None:
    with pytest.raises(Unrecognised) as odd:
        decode_response(status, "Bad Gateway", body, expect)
    assert odd.value.what == what


def test_submission_checks_options() -> None:
    args = argparse.Namespace(
        type="default_task", payload='{"a": 1}', priority=-3, timeout="250ms", max_retries=2
    )
    assert submission(args) == {
        "type": "default_task",
        "payload": {"a": 1},
        "priority": -3,
        "timeout": 0.25,
        "max_retries": 2,
    }
    for bad in ({"payload": "1"}, {"timeout": "-1s"}, {"max_retries": -1}, {"payload": "{"}):
        with pytest.raises(ClientUsageError):
            submission(argparse.Namespace(**{**vars(args), **bad}))


def test_payload_from_a_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.json"
    path.write_text('{"from": "file"}')
    args = argparse.Namespace(
        type="t", payload=f"@{path}", priority=0, timeout=None, max_retries=None
    )
    assert submission(args)["payload"] == {"from": "file"}
    args.payload = "@/no/such/file.json"
    with pytest.raises(ClientUsageError, match="cannot read"):
        submission(args)


def test_table_and_detail_show_everything() -> None:
    table = text_of(task_table([TASK]))
    assert "0123456789abcdef" in table
    assert "failed" in table and "40%" in table and "2.5s" in table
    detail = text_of(task_detail(TASK))
    for needle in ("DemoFailure: boom", "Traceback", "first line", "second line", '"x": 1'):
        assert needle in detail


def test_event_lines() -> None:
    lines = EventLines()
    line = lines.line({"type": "task", "event": "failed", "task": TASK})
    assert line is not None
    assert "failed" in line.plain and TASK["id"] in line.plain and "DemoFailure: boom" in line.plain
    pool = lines.line(
        {
            "type": "pool",
            "action": "scale_up",
            "reason": "busy",
            "current": 7,
            "min_workers": 5,
            "max_workers": 50,
            "paused": False,
        }
    )
    assert pool is not None and "scale_up: 7 workers (min 5, max 50)" in pool.plain
    assert lines.line({"type": "resync"}) is not None
    assert lines.line({"type": "stats", "stats": {}}) is None
    snapshot = lines.line({"type": "snapshot", "tasks": [TASK], "stats": {"tasks": {"total": 9}}})
    assert snapshot is not None and "9 tracked" in snapshot.plain


def _event(event: str, **task: object) -> dict[str, object]:
    return {"type": "task", "event": event, "task": {**TASK, "error": None, **task}}


def test_watch_columns_line_up_whatever_the_type_and_event() -> None:
    """Issue #10 §5: the status and what follows start in the same column on every line."""
    lines = EventLines()
    events = [
        _event("created", type="example_task", status="pending"),
        _event("started", type="long_running_task", status="running"),
        _event("progress", type="t", status="running", progress=25.0, message="step 1/4"),
        _event("completed", type="default_task", status="completed"),
        _event("cancelled", type="example_task", status="cancelled"),
        _event("retrying", type="x", status="pending", error=TASK["error"]),
    ]
    texts = [line.plain for line in (lines.line(e) for e in events) if line is not None]
    assert len(texts) == len(events)
    fields = [re.match(r"(\S+\s+){4}", text) for text in texts]
    status_columns = {m.end() for m in fields if m is not None}
    assert len(status_columns) == 1, texts
    statuses = [text.split()[4] for text in texts]
    assert statuses == ["pending", "running", "running", "completed", "cancelled", "pending"]
    detail_columns = {texts[2].index("25%") - 1, texts[3].index("2.5s"), texts[5].index("Demo")}
    assert len(detail_columns) == 1, texts


def test_watch_prints_each_completion_once() -> None:
    """Issue #10 §5: no ``progress 100%`` line before ``completed``; a progress report that
    arrives after its task moved on is not shown either (the status change says it)."""
    lines = EventLines()
    assert lines.line(_event("progress", status="running", progress=100.0)) is None
    assert lines.line(_event("progress", status="completed", progress=100.0)) is None
    assert lines.line(_event("progress", status="failed", progress=40.0)) is None
    assert lines.line(_event("progress", status="pending", progress=40.0)) is None
    shown = lines.line(_event("progress", status="running", progress=40.0))
    assert shown is not None and "40%" in shown.plain
    done = lines.line(_event("completed", status="completed", progress=100.0))
    assert done is not None and "completed" in done.plain


def test_watch_status_is_the_one_the_event_says() -> None:
    """A task encoded after it moved on: ``started`` still reads ``running``."""
    line = EventLines().line(_event("started", status="failed"))
    assert line is not None
    assert "running" in line.plain and "failed" not in line.plain


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0123, "12ms"), (2.5, "2.5s"), (125, "2m05s"), (7260, "2h01m")]
)
def test_human_seconds(seconds: float, text: str) -> None:
    assert human_seconds(seconds) == text


def test_watch_shows_a_bulk_message_as_one_line() -> None:
    line = EventLines().line(
        {
            "type": "bulk",
            "action": "cancel",
            "matched": 5,
            "changed": 3,
            "skipped": {"already_final": 2},
        }
    )
    assert line is not None
    assert "bulk" in line.plain and "cancel: 3 of 5 matched changed (2 already_final)" in line.plain
