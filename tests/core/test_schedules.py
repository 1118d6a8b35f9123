"""Recurring schedules on a fake clock (issue 12): due times, DST, overlap, catch-up."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio
import pytest
from enginekit import _BASE, make_engine, wait_until

from workerpool_tui.config import load_config
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.errors import InvalidRequest
from workerpool_tui.core.schedule_rules import (
    ScheduleSpec,
    last_at_or_before,
    next_after,
    next_times,
)

pytestmark = pytest.mark.anyio


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_every_runs_at_multiples_of_its_period() -> None:
    spec = ScheduleSpec(name="e", type="default_task", every=300.0)
    assert next_after(spec, _ts("2026-03-01T10:02:00+00:00")) == _ts("2026-03-01T10:05:00+00:00")
    assert last_at_or_before(spec, _ts("2026-03-01T10:05:00+00:00")) == _ts(
        "2026-03-01T10:05:00+00:00"
    )


def test_cron_in_a_timezone_across_a_dst_change() -> None:
    spec = ScheduleSpec(name="c", type="default_task", cron="30 2 * * *", timezone="Europe/Paris")
    # 2026-03-29: clocks go from 02:00 to 03:00 in Paris; 02:30 does not exist that day.
    times = next_times(spec, _ts("2026-03-27T12:00:00+00:00"), 3)
    local = [datetime.fromtimestamp(t, timezone.utc).isoformat() for t in times]
    assert local[0] == "2026-03-28T01:30:00+00:00"  # 02:30 CET
    assert local[2] == "2026-03-30T00:30:00+00:00"  # 02:30 CEST
    assert times[1] > times[0]  # the missing day is handled as croniter does, once


async def test_schedule_fires_on_the_fake_clock_and_skips_overlaps() -> None:
    clock = FakeClock(_ts("2026-03-01T10:00:00+00:00"))
    tick = {
        "name": "tick",
        "type": "long_running_task",
        "every": "1m",
        "payload": {"duration": 30, "steps": 1},
    }
    cfg = load_config(None, environ={}, overrides={**_base(), "schedule": [tick]})
    async with make_engine(config=cfg, clock=clock) as engine:
        sched = engine.scheduler
        with anyio.fail_after(5):
            await sched.ready.wait()
        s = sched.get("tick")
        assert s.next_run == _ts("2026-03-01T10:01:00+00:00")
        clock.advance(60)
        await wait_until(engine, lambda: s.last_task_id is not None, "the first run")
        first = s.last_task_id
        clock.advance(60)  # the first run is still running: skipped (and logged)
        await wait_until(engine, lambda: s.next_run == _ts("2026-03-01T10:03:00+00:00"))
        assert s.last_task_id == first
        assert s.next_run == _ts("2026-03-01T10:03:00+00:00")
        view = await sched.view(s)
        assert view.last_status == "running" and view.source == "config"
        await engine.cancel(first)


async def test_api_schedules_are_checked() -> None:
    async with make_engine() as engine:
        sched = engine.scheduler
        with pytest.raises(InvalidRequest, match="cron"):
            await sched.add(ScheduleSpec(name="x", type="default_task", cron="61 * * * *"))
        with pytest.raises(InvalidRequest, match="either cron or every"):
            await sched.add(ScheduleSpec(name="x", type="default_task"))
        with pytest.raises(InvalidRequest, match="timezone"):
            await sched.add(
                ScheduleSpec(name="x", type="default_task", every=1.0, timezone="Mars/Base")
            )
        with pytest.raises(InvalidRequest, match="unknown task type"):
            await sched.add(ScheduleSpec(name="x", type="nope", every=1.0))
        s = await sched.add(ScheduleSpec(name="x", type="default_task", every=60.0))
        task_id = await sched.run_now("x")
        assert task_id is not None and s.last_task_id == task_id


def _base() -> dict[str, Any]:
    return {name: dict(values) for name, values in _BASE.items()}
