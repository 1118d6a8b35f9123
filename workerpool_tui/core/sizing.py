"""Sizing the worker pool: the auto-scaling rule applied, resize, pause and resume.

The sizing half of :class:`~.workers.WorkerPool` (the rule itself, a pure function, is
:func:`~.pool.scaling_decision`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from .bus import PoolEvent
from .errors import InvalidRequest
from .pool import PoolState, Worker, scaling_decision
from .stats import ScalingDecision

if TYPE_CHECKING:
    from .backlog import Backlog
    from .engine import Engine
    from .stats import Stats


class PoolSizing:
    """Resize, pause, scale; :class:`~.workers.WorkerPool` is one (it holds the state)."""

    _engine: Engine
    _wcfg: Any
    _tcfg: Any
    _backlog: Backlog
    _stats: Stats
    _busy_sum: int
    _busy_samples: int
    min_workers: int
    max_workers: int
    auto_scaling: bool
    paused: bool
    busy: int
    workers: dict[int, Worker]
    idle: list[Worker]

    def spawn(self) -> None:
        raise NotImplementedError

    def retire(self, count: int) -> int:
        raise NotImplementedError

    def wake(self, n: int) -> None:
        raise NotImplementedError

    def sample_busy(self) -> None:
        raise NotImplementedError

    async def scaler(self) -> None:
        while True:
            await anyio.sleep(self._wcfg.scale_check_interval)
            self.sample_busy()
            busy_avg = self._busy_sum / self._busy_samples
            self._busy_sum = self._busy_samples = 0
            if self.auto_scaling and not self.paused:
                self.scale_once(busy_avg)

    def scale_once(self, busy_avg: float | None = None) -> int:
        """Apply the scaling rule once (``busy_avg`` defaults to the busy count now)."""
        current = len(self.workers)
        decision = scaling_decision(
            current=current,
            busy_avg=self.busy if busy_avg is None else busy_avg,
            busy_now=self.busy,
            queued=len(self._backlog),
            min_workers=self.min_workers,
            max_workers=self.max_workers,
            up=self._wcfg.scale_up_threshold,
            down=self._wcfg.scale_down_threshold,
        )
        delta = decision.delta
        if delta > 0:
            for _ in range(delta):
                self.spawn()
            self.wake(delta)
        elif delta < 0:
            delta = -self.retire(-delta)
        if delta:
            self._record("scale", decision.reason, delta)
        return delta

    def _record(self, action: str, reason: str, delta: int) -> None:
        current = len(self.workers)
        engine = self._engine
        self._stats.scaling.append(ScalingDecision(engine.clock.now(), delta, current, reason))
        engine.log("info", reason)
        engine.bus.publish(
            PoolEvent(action, reason, current, self.min_workers, self.max_workers, self.paused)
        )

    def state(self) -> PoolState:
        current = len(self.workers)
        busy = sum(1 for w in self.workers.values() if w.task is not None)
        return PoolState(
            current=current,
            busy=busy,
            idle=current - busy,
            min=self.min_workers,
            max=self.max_workers,
            paused=self.paused,
            auto_scaling=self.auto_scaling,
        )

    def resize(self, *, min_workers: int | None = None, max_workers: int | None = None) -> None:
        lo = self.min_workers if min_workers is None else min_workers
        hi = self.max_workers if max_workers is None else max_workers
        if lo < 0 or hi < 1:
            raise InvalidRequest("min_workers must be >= 0 and max_workers >= 1")
        if lo > hi:
            raise InvalidRequest(f"min_workers ({lo}) must not exceed max_workers ({hi})")
        cap = self._tcfg.max_concurrent_tasks
        if hi > cap:
            raise InvalidRequest(
                f"max_workers ({hi}) must not exceed task.max_concurrent_tasks ({cap})"
            )
        self.min_workers, self.max_workers = lo, hi
        current = len(self.workers)
        if current < lo:
            for _ in range(lo - current):
                self.spawn()
            self.wake(lo - current)
        elif current > hi:
            excess = current - hi - self.retire(current - hi)
            # Workers not parked idle (not started yet, between two tasks, or busy) retire
            # at their next loop check, a busy one once its task is done; free ones first.
            for w in sorted(self.workers.values(), key=lambda w: w.task is not None):
                if excess <= 0:
                    break
                if not w.retire:
                    w.retire = True
                    del self.workers[w.id]
                    excess -= 1
        self._record("resize", f"resized: min {lo}, max {hi} ({len(self.workers)} workers)", 0)

    def pause(self) -> None:
        if self._engine.accepting and not self.paused:
            self.paused = True
            self._record("pause", "dispatch paused", 0)

    def resume(self) -> None:
        if self._engine.accepting and self.paused:
            self.paused = False
            self.wake(len(self.idle))
            self._backlog.idle()
            self._record("resume", "dispatch resumed", 0)
