"""Helpers for the server tests: a real engine + API server on 127.0.0.1, port 0, small limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from workerpool_tui.config import Config, load_config
from workerpool_tui.core import Engine
from workerpool_tui.server import ApiServer, Limits

TEST_LIMITS = Limits(
    max_body_bytes=64 * 1024,
    max_connections=400,
    header_timeout_s=0.5,
    body_timeout_s=0.5,
    # Long enough that a loaded machine's pause between two requests of one test does
    # not race the server closing the idle connection (a ReadError on the second request).
    keep_alive_timeout_s=5.0,
    write_timeout_s=2.0,
    ws_close_timeout_s=0.5,
    stats_interval_s=0.2,
)


def make_config(**sections: Mapping[str, Any]) -> Config:
    tree: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "store": {"path": ""},
        "worker": {"min_workers": 2, "max_workers": 4, "shutdown_timeout": "2s"},
        "logger": {"level": "warning"},
    }
    for name, values in sections.items():
        tree.setdefault(name, {}).update(values)
    return load_config(None, environ={}, overrides=tree)


@asynccontextmanager
async def running_server(
    cfg: Config | None = None,
    *,
    limits: Limits = TEST_LIMITS,
    web_root: Path | None = None,
    id_factory: Callable[[], str] | None = None,
) -> AsyncIterator[ApiServer]:
    """Engine and server as the runtime composes them, shut down in the same order."""
    cfg = cfg or make_config()
    async with anyio.create_task_group() as tg, Engine(cfg, id_factory=id_factory) as engine:
        server: ApiServer = await tg.start(
            ApiServer(
                engine,
                cfg.server,
                limits=limits,
                web_root=web_root,
                allow_shell=cfg.task.allow_shell,
            ).run
        )
        try:
            yield server
        finally:
            server.begin_shutdown()
            await engine.shutdown()
            with anyio.CancelScope(shield=True):
                await server.close_websockets()
            server.stop()


async def read_until_closed(stream: anyio.abc.ByteStream, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


class ResponseReader:
    """Reads complete responses (head + Content-Length body) off a raw stream, keeping any
    bytes of the next, pipelined response for the next call."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buf = b""

    async def next(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            self.buf += await self.stream.receive()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += await self.stream.receive()
        self.buf = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]


async def read_response(stream: anyio.abc.ByteStream) -> bytes:
    """One complete response (nothing pipelined may follow it)."""
    return await ResponseReader(stream).next()


async def wait_until(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    """Poll a condition of server state (no event exists for it) under a deadline."""
    with anyio.fail_after(deadline_s):
        while True:
            if condition():
                return
            await anyio.sleep(0.005)
