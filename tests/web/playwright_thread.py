"""Playwright driven from a thread of its own, used from the tests' thread as if it were sync.

Playwright's sync API runs an asyncio event loop inside a greenlet of the calling thread and
leaves that loop marked as running between calls. A session-wide browser opened that way
makes every later ``asyncio.run`` / ``anyio.run`` in the main thread fail ("Cannot run the
event loop while another loop is running"), so the suite only passed in one order.

Here Playwright's async API lives on an event loop in a daemon thread. :class:`Remote` wraps
each Playwright object: calling one of its methods runs the call on that loop (awaiting it
when it is a coroutine) and waits for the answer, so tests read like sync Playwright code
(``page.click("#go")``) while the main thread never holds an event loop. Event handlers
(``page.on("console", f)``) run on the Playwright thread and get the async API's objects.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

CALL_TIMEOUT_S = 120.0
"""Ceiling for one call: Playwright's own timeouts (15-20 s in these tests) fire first."""


def _is_playwright(value: object) -> bool:
    return type(value).__module__.startswith("playwright.")


class PlaywrightThread:
    """An asyncio event loop running in a daemon thread; the only place Playwright runs."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="playwright", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the Playwright loop; its result, or its exception re-raised here."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` on the Playwright loop (awaiting what it returns) and wrap the answer."""

        async def go() -> Any:
            value = fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = await value
            return value

        return self.wrap(self.run(go()))

    def wrap(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.wrap(v) for v in value]
        if _is_playwright(value):
            return Remote(self, value)
        return value

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT_S)


class Remote:
    """A Playwright object that lives on the Playwright thread."""

    __slots__ = ("_obj", "_pw")

    def __init__(self, pw: PlaywrightThread, obj: Any) -> None:
        self._pw = pw
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        async def read() -> Any:
            return getattr(self._obj, name)

        value = self._pw.run(read())  # properties may read state the loop thread writes
        if callable(value) and not _is_playwright(value):
            return functools.partial(self._pw.call, value)
        return self._pw.wrap(value)

    def __repr__(self) -> str:
        return f"Remote({self._obj!r})"


@contextmanager
def launch_chromium(executable: str, args: list[str]) -> Iterator[Remote]:
    """Start Playwright on its own thread and launch ``executable``; close both afterwards."""
    from playwright.async_api import async_playwright

    pw_thread = PlaywrightThread()
    try:
        manager = async_playwright()
        playwright = pw_thread.run(manager.start())
        try:
            browser = pw_thread.call(
                playwright.chromium.launch, executable_path=executable, args=args
            )
            try:
                yield browser
            finally:
                browser.close()
        finally:
            pw_thread.run(manager.__aexit__(None, None, None))
    finally:
        pw_thread.stop()
