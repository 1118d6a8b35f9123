"""The ``Host`` rule against DNS rebinding (#15 §9): without a token only loopback names,
``server.allowed_hosts`` and the address the client connected to are answered."""

from __future__ import annotations

import anyio
import httpx
import pytest
from server_helpers import make_config, read_until_closed, running_server

from workerpool_tui.server.access import HostPolicy

pytestmark = pytest.mark.anyio


async def request(port: int, head: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as s:
        await s.send(head)
        with anyio.fail_after(5):
            return await read_until_closed(s)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_rebound_name_cannot_change_the_pool_without_a_token() -> None:
    async with running_server() as server:
        body = b'{"paused": true}'
        answer = await request(
            server.port,
            b"PATCH /api/v1/pool HTTP/1.1\r\nHost: attacker.example:%d\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (server.port, len(body), body),
        )
        assert status(answer) == 403, answer
        assert b'"code":"forbidden_host"' in answer
        assert server.engine.pool_state().paused is False
        # Every endpoint, /health and the page included.
        for target in (b"/health", b"/", b"/api/v1/tasks", b"/api/v1/ws/tasks"):
            answer = await request(
                server.port,
                b"GET %s HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n" % target,
            )
            assert status(answer) == 403, (target, answer)


@pytest.mark.parametrize(
    "host",
    [b"localhost", b"LOCALHOST:1234", b"localhost.", b"127.0.0.1", b"127.9.8.7:80", b"[::1]:8080"],
)
async def test_loopback_hosts_are_answered(host: bytes) -> None:
    async with running_server() as server:
        answer = await request(
            server.port, b"GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host
        )
        assert status(answer) == 200, answer


@pytest.mark.parametrize(
    "host",
    [
        b"attacker.example",
        b"127.0.0.1.attacker.example",
        b"localhost.attacker.example",
        b"attacker@127.0.0.1",
        b"127.0.0.1:notaport",
        b"[::1",
        b"\xff\xfe",
    ],
)
async def test_foreign_or_malformed_hosts_are_refused(host: bytes) -> None:
    async with running_server() as server:
        answer = await request(
            server.port, b"GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host
        )
        # h11 itself refuses some malformed values with 400; none is ever answered 200.
        assert status(answer) in (400, 403), answer


async def test_http10_without_host_is_answered() -> None:
    async with running_server() as server:
        answer = await request(server.port, b"GET /health HTTP/1.0\r\n\r\n")
        assert status(answer) == 200, answer


async def test_allowed_hosts_adds_names() -> None:
    cfg = make_config(server={"allowed_hosts": ["pool.example.test"]})
    async with running_server(cfg) as server:
        ok = await request(
            server.port,
            b"GET /api/v1/pool HTTP/1.1\r\nHost: Pool.Example.Test:8080\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert status(ok) == 200, ok
        other = await request(
            server.port,
            b"GET /api/v1/pool HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n",
        )
        assert status(other) == 403


async def test_with_a_token_any_host_is_answered() -> None:
    cfg = make_config(server={"auth_token": "s3cret"})
    async with running_server(cfg) as server, httpx.AsyncClient(timeout=5) as c:
        resp = await c.patch(
            f"http://127.0.0.1:{server.port}/api/v1/pool",
            json={"paused": True},
            headers={"host": "attacker.example", "authorization": "Bearer s3cret"},
        )
        assert resp.status_code == 200, resp.text
        anonymous = await c.get(
            f"http://127.0.0.1:{server.port}/api/v1/pool",
            headers={"host": "attacker.example"},
        )
        assert anonymous.status_code == 401


def test_wildcard_bind_answers_the_address_the_client_connected_to() -> None:
    policy = HostPolicy(bound_host="0.0.0.0", allowed=())
    assert policy.allows(b"192.0.2.10:8080", "192.0.2.10")
    assert not policy.allows(b"192.0.2.10:8080", "192.0.2.11")
    assert not policy.allows(b"pool.example.test", "192.0.2.10")
    assert policy.allows(b"[2001:db8::1]:8080", "2001:db8::1")
    assert policy.allows(b"[::ffff:192.0.2.10]", "192.0.2.10")
    # The verdict for a value is cached only for rules that do not depend on the socket.
    assert not policy.allows(b"192.0.2.10:8080", None)


def test_a_named_bind_address_is_answered() -> None:
    policy = HostPolicy(bound_host="pool.lan", allowed=())
    assert policy.allows(b"pool.lan:8080", None)
    assert policy.allows(b"POOL.LAN", None)
    assert not policy.allows(b"other.lan", None)
    star = HostPolicy(bound_host="127.0.0.1", allowed=("*",))
    assert star.allows(b"anything.example", None)
