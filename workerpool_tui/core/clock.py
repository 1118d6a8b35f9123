"""Time sources, so tests and snapshot baselines can run on a fixed clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock epoch seconds (timestamps shown to users)."""
        ...


class SystemClock:
    now = staticmethod(time.time)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._watchers: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the clock moves (timers look again)."""
        self._watchers.append(callback)

    def advance(self, seconds: float) -> None:
        self._now += seconds
        for callback in self._watchers:
            callback()
