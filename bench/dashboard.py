"""Does the dashboard slow the engine down, and does it stay responsive under load?

Keeps the engine fed with short tasks (``default_task``, empty payload) for a fixed time
(``--seconds``, never a task count tuned to one machine: a fast machine simply finishes
more) twice in one process: on the bare engine (baseline), then with the dashboard
attached, headless (``App.run_test``; timed from one second after it started, once its
start-up layout passes are done), while a key is pressed every 500 ms (filter "3"
running, then "1" all). Prints tasks/s for both and their ratio, the p50/p99 gap between
dashboard ticks (screen refreshes), the p50/p99 time from a key press to its effect being
applied (table refiltered, redrawn), and how long a 5 ms sleep waits for a loop turn in
each run.

    .venv/bin/python bench/dashboard.py [--seconds 8] [--workers 16] [--rounds 3]

A dashboard run also lasts until at least MIN_PRESSES key presses were measured, so
every figure has samples however fast or slow the machine is.

``--ticks N`` measures instead where a tick's time goes, without the engine's noise:
N ticks, one after the other, under a fixed synthetic load (every tick: 100 tasks
created and started, a third of the running ones report progress, the oldest finish;
the newest-first table is new from top to bottom every tick, as under real load). It
prints the milliseconds per tick spent in the app's tick and in Textual's compositor
(the screen update); ``--profile`` adds a cProfile listing.

    .venv/bin/python bench/dashboard.py --ticks 300 [--profile]

``--attached`` measures instead the dashboard attached to a loaded ``serve`` over
WebSocket (``bench/dashboard_attached.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import importlib.util
import itertools
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from textual import _compositor

from workerpool_tui.config import load_config
from workerpool_tui.core import Engine, Task, TaskSpec, TaskStatus
from workerpool_tui.core.bus import TaskEvent
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.models import EventKind
from workerpool_tui.tui.app import TICK_HZ, DashboardApp

BATCH = 1_000
"""Tasks per submission (the API's most, ``max_batch_tasks``); a bigger batch holds the
loop longer (several microseconds a task)."""
KEY_EVERY_S = 0.5
STARTUP_S = 1.0
MIN_PRESSES = 5
"""A dashboard run goes on until this many key presses were timed."""


def _config(workers: int) -> object:
    return load_config(
        None,
        overrides={
            "store": {"path": ""},
            "server": {"enabled": False},
            "logger": {"level": "warning"},
            "worker": {
                "min_workers": workers,
                "max_workers": workers,
                "enable_auto_scaling": False,
            },
            "task": {
                "queue_capacity": BATCH * 10,
                "max_concurrent_tasks": max(workers, 100),
                "max_tracked_tasks": 100_000,
            },
        },
    )


async def _drive(
    engine: Engine,
    seconds: float,
    between: Callable[[], Awaitable[None]],
    enough: Callable[[], bool] = lambda: True,
) -> tuple[float, int]:
    """Keep the queue fed (batches as room frees up) for ``seconds`` and until ``enough()``;
    the tasks finished per second over that time, and how many finished.

    One batch of BATCH tasks a loop turn, as the API takes them (``max_batch_tasks``): the
    whole room at once (up to ``queue_capacity``, 10,000) held the loop up to ~70 ms in one
    call, as no client of the server can (issue #10)."""
    spec = TaskSpec(type="default_task")
    batch = [spec] * BATCH
    start = time.perf_counter()
    base = engine.stats_data.finished_total
    with anyio.fail_after(seconds + 120):
        while time.perf_counter() - start < seconds or not enough():
            while engine.queue.free >= BATCH:
                engine.submit_nowait(batch)
                await anyio.lowlevel.checkpoint()
            await between()
    elapsed = time.perf_counter() - start
    finished = engine.stats_data.finished_total - base
    return finished / elapsed, finished


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _probe(lags: list[float]) -> None:
    """How late a 5 ms sleep wakes: what any other task on this loop waits for a turn."""
    while True:
        t0 = time.perf_counter()
        await anyio.sleep(0.005)
        lags.append((time.perf_counter() - t0 - 0.005) * 1000)


async def baseline(seconds: float, workers: int, lags: list[float]) -> tuple[float, int]:
    async with Engine(_config(workers)) as engine:  # type: ignore[arg-type]
        async with anyio.create_task_group() as tg:
            tg.start_soon(_probe, lags)
            rate = await _drive(engine, seconds, lambda: anyio.sleep(0.01))
            tg.cancel_scope.cancel()
        return rate


async def with_dashboard(
    seconds: float, workers: int, lags: list[float]
) -> tuple[tuple[float, int], list[float], list[float]]:
    async with Engine(_config(workers)) as engine:  # type: ignore[arg-type]
        app = DashboardApp(engine)
        key_ms: list[float] = []
        async with app.run_test(size=(160, 48)) as pilot:
            # Start-up (compose, the first layouts, the footer composing its keys: ~0.5 s
            # of layout passes) is left out, as the engine's own start-up is: the figure
            # is what an open dashboard costs the engine.
            await pilot.pause(STARTUP_S)
            await pilot.pause()
            done = anyio.Event()

            async def press_keys() -> None:
                # Its own task, so a slow key never holds up the submissions.
                keys = ["3", "1"]
                while not done.is_set():
                    await anyio.sleep(KEY_EVERY_S)
                    t0 = time.perf_counter()
                    # The key enters the app's queue as a terminal key would;
                    # ``pilot.press`` would also wait for the app to go idle.
                    app.simulate_key(keys[len(key_ms) % 2])
                    with anyio.fail_after(10):
                        while app.last_effect_at < t0:  # noqa: ASYNC110 - 1 ms poll of a timestamp
                            await anyio.sleep(0.001)
                    key_ms.append((app.last_effect_at - t0) * 1000)

            ticks_from = len(app.tick_times)
            async with anyio.create_task_group() as tg:
                tg.start_soon(press_keys)
                tg.start_soon(_probe, lags)
                rate = await _drive(
                    engine,
                    seconds,
                    lambda: anyio.sleep(0.01),
                    enough=lambda: len(key_ms) >= MIN_PRESSES,
                )
                done.set()
                tg.cancel_scope.cancel()
            ticks = list(app.tick_times)[ticks_from:]
            gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ticks)]
            app.exit(0)
        return rate, gaps, key_ms


class _SyntheticLoad:
    """Moves tasks through the registry and publishes their events, as the engine would."""

    NEW_PER_TICK = 100
    RUNNING = 50

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.engine, self.clock = engine, clock
        self.seq = 0
        self.running: collections.deque[Task] = collections.deque()

    def step(self) -> None:
        bus, registry, now = self.engine.bus, self.engine.registry, self.clock.now()
        for _ in range(self.NEW_PER_TICK):
            self.seq += 1
            task = Task(
                id=f"{self.seq:08x}{'ab' * 12}",
                type="default_task",
                payload={},
                seq=self.seq,
                created_at=now,
            )
            registry.add(task)
            bus.publish(TaskEvent(EventKind.CREATED, task))
            old = task.transition(TaskStatus.RUNNING)
            task.started_at, task.worker = now, self.seq % 16
            registry.moved(task, old)
            bus.publish(TaskEvent(EventKind.STARTED, task))
            self.running.append(task)
        for task in list(self.running)[::3]:
            task.progress = min(99.0, task.progress + 10)
            task.message = f"step {task.progress:.0f}/100"
            bus.publish(TaskEvent(EventKind.PROGRESS, task))
        while len(self.running) > self.RUNNING:
            task = self.running.popleft()
            old = task.transition(TaskStatus.COMPLETED)
            task.finished_at, task.progress = now, 100.0
            registry.moved(task, old)
            self.engine.stats_data.record_finish(now)
            bus.publish(TaskEvent(EventKind.COMPLETED, task))
        self.clock.advance(1 / TICK_HZ)


async def tick_costs(ticks: int, profile: bool) -> None:
    """``ticks`` dashboard ticks under :class:`_SyntheticLoad`; where their time goes."""
    clock = FakeClock()
    engine = Engine(_config(16, 200_000), clock=clock)  # type: ignore[arg-type]
    load = _SyntheticLoad(engine, clock)
    app = DashboardApp(engine)
    spent = {"compositor": 0.0}
    render_update = _compositor.Compositor.render_update

    def timed_render_update(self: _compositor.Compositor, *a: object, **kw: object) -> object:
        t0 = time.perf_counter()
        try:
            return render_update(self, *a, **kw)  # type: ignore[arg-type]
        finally:
            spent["compositor"] += time.perf_counter() - t0

    _compositor.Compositor.render_update = timed_render_update  # type: ignore[assignment,method-assign]
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.5)  # start-up settles (the footer composes its keys)

            async def one_tick() -> float:
                load.step()
                t0 = time.perf_counter()
                app._tick()
                took = time.perf_counter() - t0
                await pilot._wait_for_screen()  # the refresh messages reach the screen
                app.screen._on_timer_update()  # the screen update the tick asked for
                return took

            for _ in range(20):  # warm-up: the window fills, caches fill
                await one_tick()
            spent["compositor"] = 0.0
            profiler = cProfile.Profile() if profile else None
            tick_s = 0.0
            cpu0 = time.process_time()
            if profiler is not None:
                profiler.enable()
            for _ in range(ticks):
                tick_s += await one_tick()
            if profiler is not None:
                profiler.disable()
            cpu = time.process_time() - cpu0
            app.exit(0)
    finally:
        _compositor.Compositor.render_update = render_update  # type: ignore[method-assign]
    print(
        f"{ticks} ticks under {load.NEW_PER_TICK} new tasks a tick: per tick "
        f"app tick {tick_s * 1000 / ticks:.2f} ms, compositor "
        f"{spent['compositor'] * 1000 / ticks:.2f} ms, process CPU {cpu * 1000 / ticks:.2f} ms"
        " (CPU includes the synthetic load and the test harness)"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="each run keeps the engine busy this long"
    )
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of runs")
    parser.add_argument("--ticks", type=int, default=0, help="measure N ticks' costs instead")
    parser.add_argument("--profile", action="store_true", help="with --ticks: cProfile them")
    parser.add_argument(
        "--attached", action="store_true", help="attached to a loaded serve over WebSocket"
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="with --attached: tasks/s")
    args = parser.parse_args()
    if args.attached:
        await _attached().run_attached(args.seconds, args.workers, args.rate)
        return
    if args.ticks:
        await tick_costs(args.ticks, args.profile)
        return
    base_rates: list[float] = []
    finished: list[int] = []
    dash_rates: list[float] = []
    gaps: list[float] = []
    key_ms: list[float] = []
    base_lag: list[float] = []
    dash_lag: list[float] = []
    for _ in range(args.rounds):
        # Alternate, so a noisy neighbour hurts both sides alike.
        rate, done = await baseline(args.seconds, args.workers, base_lag)
        base_rates.append(rate)
        finished.append(done)
        (rate, done), round_gaps, round_keys = await with_dashboard(
            args.seconds, args.workers, dash_lag
        )
        dash_rates.append(rate)
        finished.append(done)
        gaps += round_gaps
        key_ms += round_keys
    base = statistics.median(base_rates)
    dash = statistics.median(dash_rates)
    print(
        f"{args.seconds:g} s a run, default_task, {args.workers} workers, {args.rounds} rounds"
        f" ({min(finished):,}-{max(finished):,} tasks finished a run)"
    )
    print(f"engine alone:         {base:10,.0f} tasks/s (median; {_list(base_rates)})")
    print(f"with dashboard:       {dash:10,.0f} tasks/s (median; {_list(dash_rates)})")
    print(f"ratio (goal >= 0.7):  {dash / base:10.2f}")
    print(
        f"tick gap (ms):        p50 {statistics.median(gaps):6.1f}   p99 {_pct(gaps, 0.99):6.1f}"
        f"   max {max(gaps):6.1f}   ({len(gaps)} gaps, target {1000 / TICK_HZ:.0f} ms)"
    )
    print(
        f"key -> effect (ms):   p50 {statistics.median(key_ms):6.1f}"
        f"   p99 {_pct(key_ms, 0.99):6.1f}"
        f"   max {max(key_ms):6.1f}   ({len(key_ms)} presses, goal p99 < 100)"
    )
    for name, lags in (("engine alone", base_lag), ("with dashboard", dash_lag)):
        print(
            f"loop turn wait (ms), {name + ':':15} p50 {statistics.median(lags):6.1f}"
            f"   p99 {_pct(lags, 0.99):6.1f}   ({len(lags)} samples of a 5 ms sleep)"
        )


def _attached() -> Any:
    """``bench/dashboard_attached.py``, loaded by path: bench/ leaves ``sys.path`` first,
    since ``bench/http.py`` would hide the standard library's ``http`` (the client's)."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location(
        "dashboard_attached", here / "dashboard_attached.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _list(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


if __name__ == "__main__":
    asyncio.run(main())
