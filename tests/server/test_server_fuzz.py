"""No client input produces a 500 (#10 §2): Hypothesis throws arbitrary JSON values and byte
strings (bodies, query strings, path segments, headers) at every route of ``ROUTES`` on a
real server on loopback, over raw sockets, and checks that the answer is never a 5xx, that
every error has the ``{"error": {"code", "message"}}`` envelope, that nothing was logged as
a server failure, and that the server is healthy afterwards.

Derandomized (the same examples every run) so that it cannot fail one run in twenty; a
failure it finds is a bug to fix, then a regression example below.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from server_helpers import make_config, running_server

from workerpool_tui.server import ApiServer
from workerpool_tui.server.routes import ROUTES, Route

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
TYPES = st.sampled_from(["default_task", "example_task", "long_running_task", "shell_task", ""])
FIELD_VALUES = st.one_of(
    JSON,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, 18446744073709551616, 1e308, -0.0, 2.0, 2.5]),
    st.sampled_from(["30s", "0", "-1s", "1e9h", "99999999999999999999d", "\u0663s", " 5m "]),
)
SUBMISSION = st.fixed_dictionaries(
    {"type": TYPES},
    optional={
        "payload": JSON | st.dictionaries(st.text(max_size=8), FIELD_VALUES, max_size=3),
        "priority": FIELD_VALUES,
        "timeout": FIELD_VALUES,
        "max_retries": FIELD_VALUES,
        "extra": JSON,
    },
)
GOOD_SUBMISSION = st.fixed_dictionaries(
    {"type": st.sampled_from(["default_task", "example_task", "long_running_task"])},
    optional={
        "payload": st.dictionaries(st.text(max_size=8), JSON, max_size=3)
        | st.fixed_dictionaries({"duration": st.floats(0, 2), "steps": st.integers(1, 4)}),
        "priority": st.integers(-(2**31), 2**31 - 1),
        "timeout": st.sampled_from([1, 0.5, "30s", "5m", None]),
        "max_retries": st.integers(0, 100),
    },
)
POOL = st.dictionaries(
    st.sampled_from(["min_workers", "max_workers", "paused", "current", "busy", "x"]),
    FIELD_VALUES | st.booleans(),
    max_size=4,
)


def _nested(depth: int) -> bytes:
    return b'{"type": "default_task", "payload": {"a": ' + b"[" * depth + b"]" * depth + b"}}"


BODY = st.one_of(
    GOOD_SUBMISSION.map(msgspec.json.encode),
    st.lists(GOOD_SUBMISSION, min_size=1, max_size=3).map(
        lambda t: msgspec.json.encode({"tasks": t})
    ),
    st.binary(max_size=64),
    JSON.map(msgspec.json.encode),
    SUBMISSION.map(msgspec.json.encode),
    st.lists(SUBMISSION, max_size=3).map(lambda t: msgspec.json.encode({"tasks": t})),
    POOL.map(msgspec.json.encode),
    st.integers(min_value=60, max_value=3000).map(_nested),
)
SEGMENT = st.one_of(
    st.text(max_size=12).map(lambda s: quote(s, safe="")),
    st.binary(min_size=1, max_size=8).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["..", ".", "%00", "abcd", "index.html", "app.js", "a" * 300]),
    st.sampled_from(
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    ).flatmap(lambda c: st.integers(1, 16).map(lambda n: c * n)),
)
QUERY_KEYS = st.sampled_from(["status", "type", "q", "limit", "offset", "token", "x"])
QUERY = st.lists(
    st.tuples(QUERY_KEYS, st.text(max_size=10) | st.sampled_from(["", "-1", "1001", "1e3"])),
    max_size=4,
).map(lambda pairs: "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs))
CONTENT_TYPES = st.sampled_from(
    [b"application/json", b"application/json; charset=utf-8", b"text/plain", b"", b"\xff"]
)
HEADER_VALUE = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c not in b"\r\n\x00").strip()
)


def _sequential_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{next(counter):016x}"


TASK_ID = st.integers(1, 40).map(lambda n: f"{n:016x}") | st.integers(1, 40).map(
    lambda n: f"{n:016x}"[:12]
)
"""Ids the server has handed out (it numbers its tasks), whole or as prefixes."""


class Outcome(msgspec.Struct):
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def _call(port: int, head: bytes, body: bytes) -> Outcome | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(OSError):  # refused before the body was read: answer follows
            s.sendall(head + body)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    if not data:
        return None  # closed without an answer (allowed only for malformed HTTP)
    head_part, _, rest = data.partition(b"\r\n\r\n")
    lines = head_part.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return Outcome(status, headers, rest)


def _check(outcome: Outcome | None, what: object) -> None:
    if outcome is None:
        return
    assert outcome.status < 500, (what, outcome)
    if outcome.status >= 400:
        assert outcome.headers.get(b"content-type") == b"application/json; charset=utf-8", what
        error = msgspec.json.decode(outcome.body)["error"]
        assert isinstance(error["code"], str) and error["code"], (what, outcome)
        assert isinstance(error["message"], str) and error["message"], (what, outcome)
        assert set(error) <= {"code", "message", "candidates"}, (what, outcome)


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[ApiServer, _Failures]]:
    failures = _Failures()
    logger = logging.getLogger("workerpool_tui")
    logger.addHandler(failures)
    cfg = make_config(task={"queue_capacity": 200}, worker={"shutdown_timeout": "1s"})
    try:
        with (
            start_blocking_portal("asyncio") as portal,
            portal.wrap_async_context_manager(
                running_server(cfg, id_factory=_sequential_ids())
            ) as server,
        ):
            yield server, failures
    finally:
        logger.removeHandler(failures)


def _head(route: Route, data: Any) -> tuple[bytes, bytes, str]:
    segments = iter(data["segments"])
    path = "/".join(
        next(segments) if part.startswith("{") else part for part in route.path.split("/")
    )
    target = path + ("?" + data["query"] if data["query"] else "")
    body = data["body"] if data["with_body"] else b""
    lines = [
        f"{data['method'] or route.method} {target} HTTP/1.1".encode("latin-1"),
        b"Host: 127.0.0.1",
        b"Connection: close",
        b"Content-Length: %d" % len(body),
    ]
    if data["content_type"]:
        lines.append(b"Content-Type: " + data["content_type"])
    for name, value in data["headers"]:
        lines.append(name + b": " + value)
    return b"\r\n".join(lines) + b"\r\n\r\n", body, target


GOOD_POOL = st.fixed_dictionaries(
    {},
    optional={
        "min_workers": st.integers(0, 3),
        "max_workers": st.integers(3, 6),
        "paused": st.booleans(),
    },
)


def _body_for(route: Route) -> st.SearchStrategy[bytes]:
    """Mostly what the route takes (so that handlers are reached), else anything."""
    if route.handler == "submit":
        fitting = GOOD_SUBMISSION | SUBMISSION
        return st.one_of(fitting.map(msgspec.json.encode), fitting.map(msgspec.json.encode), BODY)
    if route.handler == "submit_batch":
        tasks = st.lists(GOOD_SUBMISSION | SUBMISSION, max_size=3)
        return st.one_of(tasks.map(lambda t: msgspec.json.encode({"tasks": t})), BODY)
    if route.handler == "patch_pool":
        return st.one_of((GOOD_POOL | POOL).map(msgspec.json.encode), BODY)
    return BODY


def _request(route: Route) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "route": st.just(route),
            "method": st.sampled_from([None] * 6 + ["GET", "POST", "PUT", "DELETE", "PATCH"]),
            "segments": st.lists(st.one_of(TASK_ID, SEGMENT), min_size=2, max_size=2),
            "query": QUERY,
            "body": _body_for(route),
            "with_body": st.sampled_from([True, True, True, False]),
            "content_type": st.sampled_from([b"application/json"] * 3) | CONTENT_TYPES,
            "headers": st.lists(
                st.tuples(
                    st.sampled_from(
                        [b"Authorization", b"Origin", b"Upgrade", b"Expect", b"X-Any", b"Accept"]
                    ),
                    HEADER_VALUE,
                ),
                max_size=3,
            ),
        }
    )


REQUEST = st.sampled_from(ROUTES).flatmap(_request)


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=REQUEST)
@example(
    data={
        "route": next(r for r in ROUTES if r.handler == "submit"),
        "method": None,
        "segments": ["", ""],
        "query": "",
        "body": b'{"type": "default_task", "priority": 18446744073709551616}',
        "with_body": True,
        "content_type": b"application/json",
        "headers": [],
    }
)
def test_no_input_produces_a_server_error(
    live: tuple[ApiServer, _Failures], data: dict[str, Any]
) -> None:
    server, failures = live
    head, body, _ = _head(data["route"], data)
    outcome = _call(server.port, head, body)
    event(f"status {outcome.status if outcome else 'closed'}")
    _check(outcome, (head, body))
    assert not failures.records, [r.getMessage() for r in failures.records]


def test_server_healthy_after_the_fuzzing(live: tuple[ApiServer, _Failures]) -> None:
    server, failures = live
    outcome = _call(
        server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b""
    )
    assert outcome is not None and outcome.status == 200
    assert not failures.records
