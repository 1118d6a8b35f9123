"""The attached dashboard's connection: the loop that holds ``/api/v1/ws/tasks`` open, and
its state as the header shows it (see :mod:`.remote` for what the messages become).

States: ``connecting to URL…``, ``connected to URL``, ``reconnecting in 2s (attempt 3):
connection refused``. A lost or refused connection is retried with exponential backoff,
:data:`BACKOFF_MIN_S` doubling to :data:`BACKOFF_MAX_S`, reset once a connection
succeeds. A refused token (401/403) is not retried: :meth:`Link.wait_fatal` answers with
:data:`~.remote_http.TOKEN_HINT`. An inbox past ``inbox_max`` messages (the dashboard far
behind) is dropped and the stream reopened at once: a fresh snapshot is cheaper than
catching up.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ..client.api import ServerUrl
from ..client.stream import StreamLost
from .remote_http import TOKEN_HINT, RemoteError
from .remote_stream import Refused, open_stream

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


class Link:
    def __init__(
        self,
        server: ServerUrl,
        token: str | None,
        *,
        idle_timeout_s: float,
        backoff: tuple[float, float],
        log: Callable[[str, str], None],
        changed: Callable[[], None],
    ) -> None:
        self.server = server
        self._token = token
        self._idle_timeout_s = idle_timeout_s
        self._backoff = backoff
        self._log = log
        self._changed = changed
        """Called when the state changes (the header shows it)."""
        self.connected = False
        self.attempts = 0
        """Failed connection attempts since the last success."""
        self.behind = 0
        """Times the inbox overflowed (each: a fresh snapshot)."""
        self._state = f"connecting to {server.url}…"
        self._retry_at: float | None = None
        self._fatal: str | None = None
        self._fatal_event: anyio.Event | None = None

    async def run(
        self, on_connect: Callable[[], Awaitable[None]], inbox: deque[Any], inbox_max: int
    ) -> None:
        """Hold the connection until cancelled (or the token is refused): ``on_connect``
        after each handshake, then every decoded message appended to ``inbox``."""
        delay = self._backoff[0]
        while True:
            behind = False
            try:
                async with open_stream(
                    self.server, self._token, idle_timeout_s=self._idle_timeout_s
                ) as ws:
                    await on_connect()
                    self._up()
                    delay = self._backoff[0]
                    async for message in ws.messages():
                        inbox.append(message)
                        if len(inbox) > inbox_max:
                            behind = True
                            break
                    reason = "the server closed the stream"
            except Refused as exc:
                if exc.status in (401, 403):
                    self._give_up(TOKEN_HINT)
                    return
                reason = f"refused: {exc}"
            except (StreamLost, RemoteError) as exc:
                reason = str(exc)
            except (KeyError, TypeError, ValueError) as exc:  # an answer of another shape
                reason = f"an unexpected answer: {exc!r}"
            if behind:
                inbox.clear()
                self.behind += 1
                self._log("warning", f"{inbox_max:,} messages behind: a fresh snapshot")
                continue
            self.connected = False
            self.attempts += 1
            self._retry_at = time.monotonic() + delay
            self._state = f"reconnecting in {{}}s (attempt {self.attempts}): {reason}"
            self._log("warning", f"{self.server.url}: {reason}; reconnecting in {delay:g}s")
            self._changed()
            await anyio.sleep(delay)
            self._retry_at = None
            self._state = f"connecting to {self.server.url}…"
            delay = min(delay * 2, self._backoff[1])

    def _up(self) -> None:
        self.connected = True
        self.attempts = 0
        self._state = f"connected to {self.server.url}"
        self._log("info", self._state)
        self._changed()

    def _give_up(self, why: str) -> None:
        self._fatal = self._state = why
        self.connected = False
        self._log("error", why)
        self._changed()
        if self._fatal_event is not None:
            self._fatal_event.set()

    def state(self) -> str:
        """The state as the header shows it (the countdown to the next attempt included)."""
        if self._retry_at is not None:
            left = max(1, math.ceil(self._retry_at - time.monotonic()))
            return self._state.format(left)
        return self._state

    async def wait_fatal(self) -> str:
        if self._fatal is None:
            self._fatal_event = self._fatal_event or anyio.Event()
            await self._fatal_event.wait()
        assert self._fatal is not None
        return self._fatal
