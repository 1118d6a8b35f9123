"""Running statistics: throughput per second, latency percentiles, scaling history, loop lag.

Recording is O(1) on the worker's hot path (an integer bucket and a ring slot); the
percentiles are computed when someone asks, from the most recent samples.
"""

from __future__ import annotations

import math
from collections import deque

import msgspec

from .index import TaskCounts
from .pool import PoolState

WINDOW_S = 60
"""Throughput is averaged over the last minute."""
SAMPLES = 4096
"""Latency percentiles use the most recent this-many tasks."""


class Percentiles(msgspec.Struct, frozen=True):
    p50: float
    p95: float
    p99: float


class Throughput(msgspec.Struct, frozen=True):
    completed_per_s: float
    """Finished tasks (any outcome) per second, averaged over the last minute."""
    completed_last_s: float
    """Finished tasks in the last full second."""
    window_s: int
    history: list[int]
    """Finished tasks per second, oldest first, for the last ``window_s`` seconds."""


class Latency(msgspec.Struct, frozen=True):
    queue_wait_s: Percentiles
    run_s: Percentiles
    loop_lag_s: float
    """How late the event loop woke a 250 ms timer, last measurement."""
    loop_lag_max_s: float


class ScalingDecision(msgspec.Struct, frozen=True):
    at: float
    delta: int
    current: int
    reason: str


def percentiles(samples: deque[float]) -> Percentiles:
    """Nearest-rank p50/p95/p99 of the samples (zeros when there are none)."""
    n = len(samples)
    if n == 0:
        return Percentiles(0.0, 0.0, 0.0)
    values = sorted(samples)

    def at(q: float) -> float:
        return round(values[min(n - 1, max(0, math.ceil(q * n) - 1))], 6)

    return Percentiles(at(0.50), at(0.95), at(0.99))


class Stats:
    def __init__(self) -> None:
        self._buckets = [0] * WINDOW_S
        self._bucket_second = [0] * WINDOW_S
        # The second being counted: finishes inside [_lo, _hi) only bump _open, and
        # the count reaches its bucket when the second changes or somebody reads.
        self._lo = self._hi = 0.0
        self._open = 0
        self._closed_total = 0
        self.queue_wait: deque[float] = deque(maxlen=SAMPLES)
        self.run_time: deque[float] = deque(maxlen=SAMPLES)
        self.scaling: deque[ScalingDecision] = deque(maxlen=50)
        self.loop_lag_s = 0.0
        self.loop_lag_max_s = 0.0

    @property
    def finished_total(self) -> int:
        return self._closed_total + self._open

    def record_finish(self, now: float) -> None:
        if self._lo <= now < self._hi:  # the hot path: one comparison, one addition
            self._open += 1
            return
        self._flush()
        second = int(now)
        self._lo, self._hi = float(second), float(second + 1)
        self._open = 1

    def _flush(self) -> None:
        """Add the open second's count to its bucket."""
        if not self._open:
            return
        second = int(self._lo)
        slot = second % WINDOW_S
        if self._bucket_second[slot] != second:
            self._bucket_second[slot] = second
            self._buckets[slot] = 0
        self._buckets[slot] += self._open
        self._closed_total += self._open
        self._open = 0

    def history(self, now: float) -> list[int]:
        """Finished tasks per second for the last minute, oldest first (current second last)."""
        self._flush()
        current = int(now)
        out = []
        for second in range(current - WINDOW_S + 1, current + 1):
            slot = second % WINDOW_S
            out.append(self._buckets[slot] if self._bucket_second[slot] == second else 0)
        return out

    def throughput(self, now: float) -> Throughput:
        hist = self.history(now)
        full = hist[:-1]  # the current second is still filling up
        return Throughput(
            completed_per_s=round(sum(full) / len(full), 2),
            completed_last_s=float(full[-1]),
            window_s=WINDOW_S,
            history=hist,
        )

    def latency(self) -> Latency:
        return Latency(
            queue_wait_s=percentiles(self.queue_wait),
            run_s=percentiles(self.run_time),
            loop_lag_s=round(self.loop_lag_s, 6),
            loop_lag_max_s=round(self.loop_lag_max_s, 6),
        )


class QueueStats(msgspec.Struct, frozen=True):
    depth: int
    capacity: int


class BusStats(msgspec.Struct, frozen=True):
    published: int
    dropped: int
    subscribers: int
    resyncs: int


class EngineStats(msgspec.Struct, frozen=True):
    """The stats object of ``GET /api/v1/tasks/status/stats`` and of WebSocket messages."""

    tasks: TaskCounts
    queue: QueueStats
    workers: PoolState
    throughput: Throughput
    latency: Latency
    bus: BusStats
    scaling: list[ScalingDecision]
    uptime_s: float
