"""``GET /metrics``: the engine's state and totals in the Prometheus text format, written by
``prometheus_client`` from a collector that reads them when scraped (the hot path bumps
plain counters, :mod:`..core.tally`; nothing is kept twice).

In cluster mode every metric carries ``instance`` (the instance's name) and each instance
reports what it did (submitted, ran, finished, retried, committed) and its own pool; the
cluster-wide gauges (``workerpool_tasks``, ``workerpool_queue_depth``) come from one
instance only: the live (``running``) instance that joined first, re-read every
:data:`REPORTER_CHECK_S`, so that ``sum()`` over instances never counts the cluster twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..core.errors import StoreUnavailable
from ..core.models import TaskStatus
from ..core.tally import Histogram

if TYPE_CHECKING:
    from ..core.engine import Engine
    from .broadcast import Broadcaster

REPORTER_CHECK_S = 5.0
"""How often a cluster instance asks whether it is the one reporting cluster-wide gauges."""
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
"""The format ``generate_latest`` writes (Prometheus' classic text format)."""


class EngineCollector:
    """A ``prometheus_client`` collector over one engine and its server's broadcaster."""

    def __init__(self, engine: Engine, broadcaster: Broadcaster) -> None:
        self.engine = engine
        self.broadcaster = broadcaster
        self.instance = engine.store.name if engine.store is not None else None
        self.reports_cluster = engine.store is None
        """Whether the cluster-wide gauges are this instance's to report."""
        self._checked_at = -float("inf")

    async def refresh(self) -> None:
        """In a cluster, find out (now and then) whether this instance reports the
        cluster-wide gauges; an unreachable store means it does not, for now."""
        if self.engine.store is None:
            return
        now = time.monotonic()
        if now - self._checked_at < REPORTER_CHECK_S:
            return
        self._checked_at = now
        try:
            live = [i for i in await self.engine.instances() if i.state == "running"]
        except StoreUnavailable:  # report what is local until it answers again
            self.reports_cluster = False
            return
        first = min(live, key=lambda i: (i.started_at, i.id), default=None)
        self.reports_cluster = first is not None and bool(first.this)

    # ------------------------------------------------------------------ the collector
    def describe(self) -> Iterable[Metric]:
        return []  # collected fresh on every scrape, never checked at registration

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        inst = [] if self.instance is None else [self.instance]
        base = [] if self.instance is None else ["instance"]
        tally = engine.tally

        def counter(name: str, doc: str, labels: list[str], values: Iterable[Any]) -> Metric:
            fam = CounterMetricFamily(name, doc, labels=base + labels)
            for key, value in values:
                fam.add_metric(inst + list(key), value)
            return fam

        def gauge(
            name: str, doc: str, value: float, labels: dict[str, str] | None = None
        ) -> Metric:
            names = list(labels or {})
            fam = GaugeMetricFamily(name, doc, labels=base + names)
            fam.add_metric(inst + [(labels or {})[n] for n in names], value)
            return fam

        yield counter(
            "workerpool_tasks_submitted",
            "Tasks admitted by this instance, by type",
            ["type"],
            (((t,), n) for t, n in sorted(tally.submitted.items())),
        )
        yield counter(
            "workerpool_tasks_finished",
            "Tasks that reached a final status here, by type and status",
            ["type", "status"],
            ((k, n) for k, n in sorted(tally.finished.items())),
        )
        yield counter(
            "workerpool_task_retries",
            "Automatic retries scheduled here, by type",
            ["type"],
            (((t,), n) for t, n in sorted(tally.retries.items())),
        )
        yield self._histograms(
            "workerpool_task_wait_seconds",
            "From submission to the first start, by type",
            tally.wait,
        )
        yield self._histograms(
            "workerpool_task_run_seconds", "One run of a task, by type", tally.run
        )
        pool = engine.pool_state()
        for what, value, doc in (
            ("current", pool.current, "Workers in the pool"),
            ("busy", pool.busy, "Workers running a task"),
            ("min", pool.min, "The pool's lower bound"),
            ("max", pool.max, "The pool's upper bound"),
        ):
            yield gauge(f"workerpool_workers_{what}", doc, value)
        yield gauge("workerpool_pool_paused", "1 while dispatching is paused", int(pool.paused))
        bus = engine.bus.stats()
        yield counter("workerpool_bus_published", "Events published", [], [((), bus["published"])])
        yield counter(
            "workerpool_bus_dropped",
            "Events dropped by full subscribers",
            [],
            [((), bus["dropped"])],
        )
        yield gauge(
            "workerpool_websocket_clients",
            "Connected WebSocket clients",
            len(self.broadcaster.clients),
        )
        stats = engine.stats_data
        yield gauge("workerpool_loop_lag_seconds", "Event-loop lag, last probe", stats.loop_lag_s)
        yield gauge(
            "workerpool_uptime_seconds", "Seconds since the engine started", engine.uptime_s()
        )
        commits = getattr(engine.journal, "commit_tally", None)
        if commits is not None:
            yield self._histograms(
                "workerpool_store_commit_seconds",
                "One store commit (group commit of a batch)",
                {None: commits.latency},
            )
            yield self._histograms(
                "workerpool_store_commit_rows", "Rows written by one commit", {None: commits.rows}
            )
        claims = getattr(getattr(engine.store, "backlog", None), "claim_tally", None)
        if claims is not None:
            yield self._histograms(
                "workerpool_store_claim_seconds",
                "One claim of runnable tasks for idle workers (cluster store)",
                {None: claims.latency},
            )
            yield self._histograms(
                "workerpool_store_claim_rows", "Tasks taken by one claim", {None: claims.rows}
            )
        if self.reports_cluster:
            yield from self._cluster_gauges(base, inst)

    def _cluster_gauges(self, base: list[str], inst: list[str]) -> Iterator[Metric]:
        engine = self.engine
        counts = engine.index.counts()
        fam = GaugeMetricFamily(
            "workerpool_tasks",
            "Tracked tasks by status (the whole cluster's, from one instance)",
            labels=[*base, "status"],
        )
        # ``pending`` is the runnable ones; those waiting for a time or for parents are
        # ``scheduled`` and ``blocked`` (still status pending in the task model).
        for status in (*(s.value for s in TaskStatus), "scheduled", "blocked"):
            fam.add_metric([*inst, status], getattr(counts, status))
        yield fam
        backlog = engine.backlog
        for name, doc, value in (
            ("workerpool_queue_depth", "Tasks waiting to run (the whole cluster's)", len(backlog)),
            ("workerpool_queue_capacity", "The queue's capacity", backlog.capacity),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=base)
            gauge.add_metric(inst, value)
            yield gauge

    def _histograms(self, name: str, doc: str, hists: dict[Any, Histogram]) -> Metric:
        labelled = any(key is not None for key in hists)
        labels = (["instance"] if self.instance is not None else []) + (
            ["type"] if labelled else []
        )
        fam = HistogramMetricFamily(name, doc, labels=labels)
        inst = [] if self.instance is None else [self.instance]
        for key, hist in sorted(hists.items(), key=lambda kv: str(kv[0])):
            values = inst + ([key] if labelled else [])
            fam.add_metric(values, hist.cumulative(), hist.total)
        return fam


class MetricsExporter:
    """One registry per server, holding its collector."""

    def __init__(self, engine: Engine, broadcaster: Broadcaster) -> None:
        self.collector = EngineCollector(engine, broadcaster)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    async def scrape(self) -> bytes:
        await self.collector.refresh()
        return generate_latest(self.registry)
