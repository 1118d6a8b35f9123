"""The API server: an anyio TCP listener whose connections are accepted into the thin
streams of :mod:`.transport`, one :class:`~.http.HttpConnection` per socket,
the :class:`~.broadcast.Broadcaster` for WebSocket clients, and the shutdown sequence.

Start it with ``await task_group.start(server.run)``: a bind failure raises
:class:`ServerStartError` in the caller ("port 8080 is in use"). Shutdown, driven by the
runtime: :meth:`ApiServer.begin_shutdown` (listener closed, 503 on open connections) →
the engine drains → :meth:`ApiServer.close_websockets` (1001) → :meth:`ApiServer.stop`.
"""

from __future__ import annotations

import errno
import logging
import time
from functools import partial
from importlib.resources.abc import Traversable
from pathlib import Path

import anyio
from anyio.abc import ByteStream, SocketAttribute, TaskStatus
from wsproto.frame_protocol import CloseReason

from ..config import ServerConfig
from ..core.engine import Engine
from ..core.supervise import supervised
from ..eventloop import running_loop_name
from .access import is_loopback
from .api import Api
from .broadcast import Broadcaster
from .http import WAITING_ON_CLIENT, HttpConnection, refuse_connection
from .limits import Limits
from .openapi import DocumentSettings, openapi_json
from .responses import error_response
from .transport import serve_tcp

log = logging.getLogger("workerpool_tui.server")


class ServerStartError(Exception):
    """The server could not start; the message is one line for the user."""


class ApiServer:
    def __init__(
        self,
        engine: Engine,
        cfg: ServerConfig,
        *,
        limits: Limits | None = None,
        web_root: Path | Traversable | None = None,
        allow_shell: bool = False,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.limits = limits or Limits.from_config(cfg)
        self.allow_shell = allow_shell
        self.broadcaster = Broadcaster(engine, self.limits)
        self.api = Api(
            engine, cfg, self.limits, self.broadcaster, web_root=web_root, openapi=self._openapi
        )
        self._openapi_body: bytes | None = None
        self.host = cfg.host
        self.port = cfg.port
        """The bound port once running (``port = 0`` picks a free one)."""
        self.draining = False
        self.connections = 0
        self._open: set[HttpConnection] = set()
        self._accept_scope = anyio.CancelScope()
        self._stopped = anyio.Event()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_clients(self) -> int:
        return len(self.broadcaster.clients)

    def _openapi(self) -> bytes:
        """This server's OpenAPI document, built on first use."""
        if self._openapi_body is None:
            task = self.engine.config.task
            self._openapi_body = openapi_json(
                DocumentSettings(
                    token=bool(self.cfg.auth_token),
                    types=tuple(self.engine.types),
                    max_workers=task.max_concurrent_tasks,
                    max_task_timeout=task.max_task_timeout,
                    max_batch_tasks=self.limits.max_batch_tasks,
                    max_body_bytes=self.limits.max_body_bytes,
                    metrics_public=self.engine.config.metrics.public,
                )
            )
        return self._openapi_body

    def _is_draining(self) -> bool:
        return self.draining

    # ------------------------------------------------------------------ running
    async def run(self, *, task_status: TaskStatus[ApiServer] = anyio.TASK_STATUS_IGNORED) -> None:
        cfg = self.cfg
        if self.allow_shell and not cfg.auth_token and not is_loopback(cfg.host):
            raise ServerStartError(
                f"refusing to serve on non-loopback host {cfg.host} with task.allow_shell on "
                "and no server.auth_token"
            )
        try:
            listener = await anyio.create_tcp_listener(local_host=cfg.host, local_port=cfg.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServerStartError(f"port {cfg.port} is in use") from None
            reason = exc.strerror or str(exc)
            raise ServerStartError(f"cannot listen on {cfg.host}:{cfg.port}: {reason}") from None
        self.port = int(listener.extra(SocketAttribute.local_port))
        fatal = self.engine.report_fatal
        async with anyio.create_task_group() as tg:
            await tg.start(self.broadcaster.run)
            # Supervised (core/supervise.py): the reaper keeps no state between sweeps and
            # restarts; the accept loop owns the listening socket, so its failure is fatal.
            tg.start_soon(
                partial(supervised, restart=True, logger=log), "API reaper", self._reaper, fatal
            )
            tg.start_soon(
                partial(supervised, restart=False, logger=log),
                "API listener",
                partial(self._accept, listener, tg),
                fatal,
            )
            log.info("API listening on %s (%s loop)", self.address, running_loop_name())
            task_status.started(self)
            await self._stopped.wait()
            tg.cancel_scope.cancel()

    async def _accept(
        self, listener: anyio.abc.Listener[ByteStream], tg: anyio.abc.TaskGroup
    ) -> None:
        with self._accept_scope:
            async with listener:
                await serve_tcp(listener, self._connection, tg)

    async def _connection(self, stream: ByteStream) -> None:
        self.connections += 1
        try:
            if self.connections > self.limits.max_connections and not self._make_room():
                await refuse_connection(
                    stream,
                    error_response(
                        503,
                        "too_many_connections",
                        f"the server holds its limit of {self.limits.max_connections} connections",
                        close=True,
                    ),
                    self.limits,
                )
                return
            connection = HttpConnection(
                stream, self.api, self.limits, is_draining=self._is_draining
            )
            self._open.add(connection)
            try:
                await connection.run()
            finally:
                self._open.discard(connection)
        except Exception:  # a bug on one connection must never take the server down
            log.exception("connection handler failed")
        finally:
            self.connections -= 1

    def _make_room(self) -> bool:
        """At the cap, cut the connection that has waited longest for its client (idle,
        or trickling a head or a body), so that slow clients holding every connection
        cannot keep others (``/health`` among them) out. Connections whose requests are
        being handled, answered or upgraded are never cut. False if there is none."""
        victim: HttpConnection | None = None
        for connection in self._open:
            if connection.phase in WAITING_ON_CLIENT and (
                victim is None or connection.waiting_since < victim.waiting_since
            ):
                victim = connection
        if victim is None:
            return False
        self._open.discard(victim)
        victim.evict()
        return True

    async def _reaper(self) -> None:
        """Enforce every connection's deadline (header, body, keep-alive, write timeouts).

        One sweep a fraction of the shortest timeout, instead of a cancel scope around every
        read and write: the request path only stores a float."""
        limits = self.limits
        shortest = min(
            limits.header_timeout_s,
            limits.body_timeout_s,
            limits.keep_alive_timeout_s,
            limits.write_timeout_s,
        )
        tick = min(max(shortest / 8, 0.01), 0.5)
        while True:
            await anyio.sleep(tick)
            now = time.monotonic()
            for connection in [c for c in self._open if c.deadline <= now]:
                connection.expire()

    # ------------------------------------------------------------------ shutdown
    def begin_shutdown(self) -> None:
        """Stop accepting; requests on open connections get 503 ``shutting_down``."""
        self.draining = True
        self._accept_scope.cancel()

    async def close_websockets(self) -> None:
        """Close every WebSocket with 1001 and wait (bounded) for them to go."""
        self.broadcaster.close_all(CloseReason.GOING_AWAY, "server shutting down")
        with anyio.move_on_after(self.limits.ws_close_timeout_s * 2):
            await self.broadcaster.wait_empty()

    def stop(self) -> None:
        """End :meth:`run`: every remaining connection is cancelled."""
        self.begin_shutdown()
        self._stopped.set()
