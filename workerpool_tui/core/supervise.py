"""Supervision of the long-lived background jobs: none of them may die silently.

Every job that runs for the life of a component (the engine's watchdog, retry timer,
scaler, janitor and loop probe; the store's flusher; the server's accept loop, reaper and
broadcaster) runs through :func:`supervised`. An unexpected exception is logged with its
traceback, then either

- the job is restarted (``restart=True``: jobs that keep no state of their own between
  two turns), after a short backoff that doubles per failure, or
- the failure is fatal (``restart=False``, or a restartable job failing more than
  :data:`MAX_RESTARTS` times within :data:`RESTART_WINDOW_S`): ``on_fatal`` gets a
  one-line reason, and whoever owns the process shuts it down cleanly and exits non-zero.

Cancellation is never caught: a job ends when its task group is cancelled.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 5.0

_logger = logging.getLogger("workerpool_tui.supervise")

Fatal = Callable[[str], None]
"""Called once a job cannot go on; the argument is a one-line reason."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


async def supervised(
    name: str,
    job: Callable[[], Awaitable[None]],
    on_fatal: Fatal,
    *,
    restart: bool,
    logger: logging.Logger = _logger,
) -> None:
    """Run ``job`` for as long as the caller's task group lives (see the module docstring).

    A job that returns normally has finished its work; it is not restarted.
    """
    failures: deque[float] = deque()
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            await job()
            return
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            now = time.monotonic()
            failures.append(now)
            while failures and failures[0] < now - RESTART_WINDOW_S:
                failures.popleft()
            logger.error("%s failed: %s", name, one_line(exc), exc_info=exc)
            if not restart or len(failures) > MAX_RESTARTS:
                why = one_line(exc)
                if restart:
                    why += f" ({len(failures)} failures within {RESTART_WINDOW_S:g}s)"
                on_fatal(f"{name} failed: {why}")
                return
            logger.warning("%s restarts in %gs", name, backoff)
            await anyio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
