"""Running totals for monitoring (``GET /metrics``): plain counters and fixed-bucket
histograms that the engine bumps on its hot path (a dict lookup and a few additions) and
an exporter reads when scraped. Nothing here knows the Prometheus format.

Everything counts what *this* process did: tasks it admitted, ran, finished, retried; the
store's commits it made.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

TIME_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
"""Upper bounds of the wait- and run-time histograms (seconds; ``+Inf`` is implied). Few:
each type's two histograms are 2 x (buckets + 3) lines of every scrape."""
COMMIT_BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS: tuple[float, ...] = (1, 10, 50, 100, 500, 1000, 5000)


class Histogram:
    """Counts per bucket (not cumulative; the last is ``+Inf``) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ``+Inf`` last."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else f"{bound:g}", running))
        return out


class CommitTally:
    """A store's commits: how long each took and how many rows it wrote."""

    __slots__ = ("latency", "rows")

    def __init__(self) -> None:
        self.latency = Histogram(COMMIT_BUCKETS_S)
        self.rows = Histogram(BATCH_BUCKETS)

    def observe(self, seconds: float, rows: int) -> None:
        self.latency.observe(seconds)
        self.rows.observe(rows)


class Tally:
    """The engine's monitoring totals, by task type (and final status)."""

    def __init__(self) -> None:
        self.submitted: dict[str, int] = {}
        self.finished: dict[tuple[str, str], int] = {}
        self.retries: dict[str, int] = {}
        self.wait: dict[str, Histogram] = {}
        self.run: dict[str, Histogram] = {}

    def on_submitted(self, type_: str, count: int = 1) -> None:
        self.submitted[type_] = self.submitted.get(type_, 0) + count

    def on_started(self, type_: str, waited_s: float) -> None:
        hist = self.wait.get(type_)
        if hist is None:
            hist = self.wait[type_] = Histogram(TIME_BUCKETS_S)
        hist.observe(waited_s)

    def on_finished(self, type_: str, status: str, ran_s: float | None) -> None:
        key = (type_, status)
        self.finished[key] = self.finished.get(key, 0) + 1
        if ran_s is not None:
            self._ran(type_, ran_s)

    def on_retry(self, type_: str, ran_s: float | None) -> None:
        """A failed run that will be tried again (its run counts in the run times)."""
        self.retries[type_] = self.retries.get(type_, 0) + 1
        if ran_s is not None:
            self._ran(type_, ran_s)

    def _ran(self, type_: str, seconds: float) -> None:
        hist = self.run.get(type_)
        if hist is None:
            hist = self.run[type_] = Histogram(TIME_BUCKETS_S)
        hist.observe(seconds)
