"""The WebSocket stream of SPEC §8 through the `websockets` client, and hostile or slow
WebSocket clients on raw sockets (server frames parsed with wsproto's client side)."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

import anyio
import msgspec
import pytest
from server_helpers import TEST_LIMITS, make_config, running_server, wait_until
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping

from workerpool_tui.core import TaskSpec
from workerpool_tui.server import ApiServer

pytestmark = pytest.mark.anyio
WS_PATH = "/api/v1/ws/tasks"


def ws_url(server: ApiServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}{WS_PATH}{query}"


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(5):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def recv_until(ws: ClientConnection, want: Any) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            message = await recv_json(ws)
            if want(message):
                return message


def handshake_request(port: int, extra: bytes = b"") -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
        % (WS_PATH.encode(), port, key, extra)
    )


async def raw_ws(server: ApiServer) -> tuple[anyio.abc.SocketStream, Connection]:
    """A WebSocket opened by hand; returns the stream and a wsproto client to parse frames."""
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    await stream.send(handshake_request(server.port))
    buf = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive()
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(rest)
    return stream, client


async def read_close_code(stream: anyio.abc.SocketStream, client: Connection) -> int | None:
    """Read frames until the server's close frame (its code) or EOF (None)."""
    with anyio.fail_after(5):
        while True:
            for event in client.events():
                if isinstance(event, CloseConnection):
                    return int(event.code)
            try:
                data = await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return None
            client.receive_data(data)


async def test_snapshot_task_stats_and_pool_messages() -> None:
    async with running_server() as server:
        await server.engine.submit_many([TaskSpec(type="default_task", payload={"n": 0})])
        async with connect(ws_url(server)) as ws:
            snap = await recv_json(ws)
            assert snap["type"] == "snapshot"
            assert {"tasks", "queue", "workers", "throughput", "latency", "uptime_s"} <= set(
                snap["stats"]
            )
            assert [t["payload"] for t in snap["tasks"]] == [{"n": 0}]
            await wait_until(lambda: server.ws_clients == 1)

            [task] = await server.engine.submit_many([TaskSpec(type="default_task")])
            created = await recv_until(ws, lambda m: m["type"] == "task")
            assert created["event"] == "created" and created["task"]["id"] == task.id
            done = await recv_until(ws, lambda m: m["type"] == "task" and m["event"] == "completed")
            assert done["task"]["status"] == "completed" and done["task"]["result"] is not None
            stats = await recv_until(ws, lambda m: m["type"] == "stats")
            assert set(stats["stats"]) == set(snap["stats"])

            server.engine.resize(max_workers=3)
            pool = await recv_until(ws, lambda m: m["type"] == "pool")
            assert pool["max_workers"] == 3 and pool["action"] == "resize"
        await wait_until(lambda: server.ws_clients == 0)


async def test_auth_by_header_or_query() -> None:
    cfg = make_config(server={"auth_token": "tok"})
    async with running_server(cfg) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(server)):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(server, "?token=nope")):
                pass
        async with connect(ws_url(server, "?token=tok")) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
        async with connect(
            ws_url(server), additional_headers={"Authorization": "Bearer tok"}
        ) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"


async def test_origin_check() -> None:
    cfg = make_config(server={"allowed_origins": ["https://dash.example"]})
    async with running_server(cfg) as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(server), origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        body = json.loads(refused.value.response.body or b"{}")
        assert body["error"]["code"] == "forbidden_origin"
        with pytest.raises(InvalidStatus):  # same host name, other port
            async with connect(ws_url(server), origin="http://127.0.0.1:1"):  # type: ignore[arg-type]
                pass
        same = f"http://127.0.0.1:{server.port}"
        for origin in (same, "https://dash.example"):
            async with connect(ws_url(server), origin=origin) as ws:  # type: ignore[arg-type]
                assert (await recv_json(ws))["type"] == "snapshot"


async def test_bad_upgrade_requests() -> None:
    async with running_server() as server:
        for extra_fix in (
            (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
            (b"Sec-WebSocket-Key: ", b"Sec-WebSocket-Key: short"),
        ):
            request = handshake_request(server.port).replace(*extra_fix)
            async with await anyio.connect_tcp("127.0.0.1", server.port) as s:
                await s.send(request)
                with anyio.fail_after(5):
                    answer = await s.receive()
                assert answer.startswith(b"HTTP/1.1 400"), answer


async def test_malformed_frame_gets_close_1002() -> None:
    async with running_server() as server:
        stream, client = await raw_ws(server)
        async with stream:
            # An unmasked client frame with a reserved opcode: twice wrong.
            await stream.send(b"\x83\x02hi")
            assert await read_close_code(stream, client) == 1002
        # And the server goes on.
        async with connect(ws_url(server)) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"


async def test_oversize_message_gets_close_1009() -> None:
    async with running_server() as server, connect(ws_url(server), max_size=None) as ws:
        await recv_json(ws)
        await ws.send("x" * (TEST_LIMITS.ws_max_message_bytes + 1))
        with pytest.raises(ConnectionClosed) as closed:
            with anyio.fail_after(5):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_shutdown_closes_with_1001() -> None:
    async with running_server() as server, connect(ws_url(server)) as ws:
        await recv_json(ws)
        server.begin_shutdown()
        await server.close_websockets()
        with pytest.raises(ConnectionClosed) as closed:
            with anyio.fail_after(5):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert server.ws_clients == 0


async def test_silent_client_is_pinged_then_dropped_live_one_stays() -> None:
    limits = msgspec.structs.replace(TEST_LIMITS, ws_ping_interval_s=0.2, ws_ping_timeout_s=0.3)
    # `websockets` answers pings by itself; the raw client never does.
    async with running_server(limits=limits) as server, connect(ws_url(server)) as live:
        stream, client = await raw_ws(server)
        async with stream:
            pinged = False
            with anyio.fail_after(5):
                while True:
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
                    client.receive_data(data)
                    pinged |= any(isinstance(e, Ping) for e in client.events())
            assert pinged
        await recv_until(live, lambda m: m["type"] == "stats")
        assert server.ws_clients == 1


async def test_client_that_never_reads_does_not_slow_20_others() -> None:
    limits = msgspec.structs.replace(
        TEST_LIMITS,
        # Room for a reader that a loaded machine pauses for a few hundred ms; the client
        # that never reads still falls behind by megabytes.
        ws_queue_bytes=512 * 1024,
        ws_socket_send_buffer=16 * 1024,
        write_timeout_s=30.0,
    )
    count = 200
    async with running_server(limits=limits) as server:
        # Readers that keep up: no client-side queue limit pausing their sockets.
        fast = [await connect(ws_url(server), max_size=None, max_queue=None) for _ in range(20)]
        try:
            for ws in fast:
                assert (await recv_json(ws))["type"] == "snapshot"
            await wait_until(lambda: server.ws_clients == 20)
            known = set(server.broadcaster.clients)
            slow_sock = socket.socket()
            slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow_sock.settimeout(5)
            await anyio.to_thread.run_sync(slow_sock.connect, ("127.0.0.1", server.port))
            slow_sock.sendall(handshake_request(server.port))  # and never reads
            await wait_until(lambda: server.ws_clients == 21)
            [slow] = set(server.broadcaster.clients) - known

            # Events in chunks of 20 tasks (~250 KB each, three ~4 KB events a task): the
            # next chunk goes once every reader has seen the last one complete, so a
            # reader is never more than a chunk behind, well inside its 512 KiB queue,
            # however slowly a loaded machine runs it; the client that never reads falls
            # behind by all ten chunks (~2.5 MB). (Submitting all 200 at once made the
            # readers' lag depend on the machine: under load they were resynced too.)
            pad = "p" * 4000
            seen: list[set[str]] = [set() for _ in fast]
            finished = anyio.Event()

            async def follow(ws: ClientConnection, done: set[str]) -> None:
                while not finished.is_set():
                    with anyio.move_on_after(0.5):
                        message = json.loads(await ws.recv())
                        if message["type"] == "task" and message["event"] == "completed":
                            done.add(message["task"]["id"])
                        assert message["type"] != "resync"

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    for ws, done in zip(fast, seen, strict=True):
                        tg.start_soon(follow, ws, done)
                    for chunk in range(count // 20):
                        specs = [
                            TaskSpec(
                                type="default_task",
                                payload={"i": chunk * 20 + i, "pad": pad, "sleep": 0.02},
                            )
                            for i in range(20)
                        ]
                        ids = {t.id for t in await server.engine.submit_many(specs)}
                        await wait_until(lambda ids=ids: all(ids <= d for d in seen), 60)
                    finished.set()
            # It was resynced (queue replaced by resync + snapshot), then dropped.
            assert slow.resyncs >= 1
            assert slow.dropped is not None
            assert slow.queued_bytes == 0
            await wait_until(lambda: server.ws_clients == 20)
            assert all(c.resyncs == 0 for c in server.broadcaster.clients if c is not slow)
            slow_sock.close()
        finally:
            for ws in fast:
                await ws.close()


async def test_bus_subscription_only_while_clients_are_connected() -> None:
    async with running_server() as server:
        bus = server.engine.bus
        assert not [s for s in bus.subscribers if s.name == "websocket"]
        for _ in range(2):  # reconnecting after the last client left subscribes again
            async with connect(ws_url(server)) as ws:
                await recv_json(ws)
                assert len([s for s in bus.subscribers if s.name == "websocket"]) == 1
                await server.engine.submit_many([TaskSpec(type="default_task")])
                await recv_until(ws, lambda m: m["type"] == "task")
            await wait_until(lambda: server.ws_clients == 0)
            assert not [s for s in bus.subscribers if s.name == "websocket"]
