"""The composition root: one task group holding the engine and, optionally, the API server.

``Runtime`` is what both front ends stand on: the dashboard opens it around its Textual
app (one event loop for everything), ``workerpool-tui serve`` opens it and waits for a
signal. Leaving it shuts down in order: stop accepting, drain the engine, close the rest.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from . import __version__
from .config import Config, store_path
from .core import Engine
from .core.errors import StoreError, StoreUnavailable
from .core.journal import Journal, MemoryJournal
from .store.sqlite import SqliteJournal

if TYPE_CHECKING:
    from .server import ApiServer

log = logging.getLogger("workerpool_tui.runtime")


def make_journal(cfg: Config) -> Journal:
    """The task store for ``[store] path``: an SQLite file, or memory only for ``""``."""
    path = store_path(cfg.store)
    if path is None:
        return MemoryJournal()
    return SqliteJournal(path, sync=cfg.store.sync)


def make_engine(cfg: Config) -> Engine:
    """The engine over the store ``[store]`` selects: with ``url``, the cluster's
    PostgreSQL (the optional ``postgres`` extra); otherwise ``path``."""
    if cfg.store.url:
        try:
            from .store.postgres.store import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"store.url needs the PostgreSQL driver ({exc.name} is missing):"
                " pip install 'workerpool-tui[postgres]'"
            ) from None
        return Engine(cfg, store=PostgresStore(cfg, version=__version__))
    return Engine(cfg, journal=make_journal(cfg))


class Runtime:
    def __init__(
        self, cfg: Config, *, with_server: bool | None = None, engine: Engine | None = None
    ) -> None:
        self.cfg = cfg
        self.with_server = cfg.server.enabled if with_server is None else with_server
        self.engine = engine or make_engine(cfg)
        self.server: ApiServer | None = None
        """The running API server, or ``None``."""
        self.server_error: str | None = None
        """Why the API is not running (disabled, port in use, ...)."""
        self._stack = AsyncExitStack()
        self.tg: TaskGroup | None = None

    async def __aenter__(self) -> Runtime:
        await self._stack.__aenter__()
        try:
            self.tg = await self._stack.enter_async_context(anyio.create_task_group())
            await self._stack.enter_async_context(self.engine)
            if self.with_server:
                await self._start_server(self.tg)
            else:
                self.server_error = "disabled (server.enabled = false or --no-server)"
        except BaseException:
            await self._stack.__aexit__(None, None, None)
            raise
        return self

    async def _start_server(self, tg: TaskGroup) -> None:
        from .server import ApiServer, ServerStartError

        server = ApiServer(self.engine, self.cfg.server, allow_shell=self.cfg.task.allow_shell)
        try:
            self.server = await tg.start(server.run)
        except ServerStartError as exc:
            self.server_error = str(exc)
            log.warning("API not started: %s", exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # Graceful order: stop accepting (503 on open connections) -> the engine drains
        # (up to worker.shutdown_timeout) -> WebSockets closed with 1001 -> everything ends.
        server = self.server
        try:
            if server is not None:
                server.begin_shutdown()
            await self.engine.shutdown()
            if server is not None:
                with anyio.CancelScope(shield=True):
                    await server.close_websockets()
                server.stop()
        finally:
            if self.tg is not None:
                self.tg.cancel_scope.cancel()
        return await self._stack.__aexit__(exc_type, exc, tb)


async def wait_for_stop_signal(signals: AsyncIterator[int] | None = None) -> int:
    """Wait for SIGINT or SIGTERM; returns the signal number. ``signals``: a receiver
    opened earlier (a signal that came before this wait is not lost)."""
    if signals is not None:
        async for signum in signals:
            return int(signum)
        return 0  # pragma: no cover - the receiver never ends by itself
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as own:
        async for signum in own:
            return int(signum)
    return 0  # pragma: no cover


EXIT_FATAL = 1
"""``serve``'s exit status after a component failed for good (see ``core/supervise.py``)."""


async def wait_for_stop(
    engine: Engine, signals: AsyncIterator[int] | None = None
) -> tuple[int, str | None]:
    """Wait for SIGINT/SIGTERM or for a fatal failure of a component, whichever is first:
    ``(signal number, None)`` or ``(0, reason)``."""
    outcome: tuple[int, str | None] = (0, None)
    async with anyio.create_task_group() as tg:

        async def by_signal() -> None:
            nonlocal outcome
            outcome = (await wait_for_stop_signal(signals), None)
            tg.cancel_scope.cancel()

        async def by_failure() -> None:
            nonlocal outcome
            outcome = (0, await engine.wait_fatal())
            tg.cancel_scope.cancel()

        tg.start_soon(by_signal)
        tg.start_soon(by_failure)
    return outcome


async def serve(cfg: Config) -> int:
    """Headless: pool + API until SIGINT/SIGTERM, then a graceful shutdown; exit status 0.
    An API that cannot start (port in use, unsafe shell setup) is one line and exit 2.
    A component that fails for good is one line on stderr, the same graceful shutdown, and
    exit status :data:`EXIT_FATAL`."""
    # The signals are ours from the start: a SIGTERM while starting up stops the server
    # gracefully as soon as it is up, instead of killing it mid-way.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        return await _serve(cfg, signals)


async def _serve(cfg: Config, signals: AsyncIterator[int]) -> int:
    rt = Runtime(cfg)
    failure: str | None = None
    try:
        async with rt:
            if rt.server is None and rt.with_server:
                print(f"error: API server: {rt.server_error}", file=sys.stderr)
                return 2
            if rt.server_error:
                log.info("API: %s", rt.server_error)
            signum, failure = await wait_for_stop(rt.engine, signals)
            if failure is None:
                log.info(
                    "%s received: draining (up to %gs)",
                    signal.Signals(signum).name,
                    cfg.worker.shutdown_timeout,
                )
            else:
                log.info("draining after a fatal failure (up to %gs)", cfg.worker.shutdown_timeout)
    except StoreUnavailable as exc:
        # The last changes could not be written (the store broke, or failed at the end).
        failure = rt.engine.fatal_error or f"{exc}; the last changes were not stored"
    if failure is not None:
        print(f"error: {failure}; stopped", file=sys.stderr)
        return EXIT_FATAL
    log.info("stopped")
    return 0
