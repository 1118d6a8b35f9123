"""No background job dies silently (issue #15 §1): each failure is logged with its
traceback, then the job restarts, or (when it cannot recover) the engine reports a fatal
failure for the process owner to shut down non-zero."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio
import pytest
from enginekit import make_engine

from workerpool_tui.core import ShuttingDown, TaskSpec
from workerpool_tui.core.supervise import MAX_RESTARTS, supervised

pytestmark = pytest.mark.anyio

JOBS = ["pool.watchdog", "backlog.run", "pool.scaler", "_janitor", "_loop_probe"]


@pytest.mark.parametrize("job", JOBS)
async def test_a_failing_engine_job_is_logged_and_restarted(
    job: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    *path, name = job.split(".")
    owner: Any = engine
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0
    second_run = anyio.Event()

    async def fails_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError(f"injected into {job}")
        second_run.set()
        await original()  # the real job again, for the rest of the engine's life

    setattr(owner, name, fails_once)
    async with engine:
        with anyio.fail_after(10):
            await second_run.wait()
        # The engine is unharmed: it still runs tasks.
        task = await engine.submit(TaskSpec(type="default_task"))
        with anyio.fail_after(10):
            await engine.wait_finished(task.id)
        assert engine.fatal_error is None
    failures = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and "injected" in str(r.msg % r.args)
    ]
    assert len(failures) == 1
    assert failures[0].exc_info is not None  # with its traceback


async def test_a_job_that_keeps_failing_is_fatal_and_the_engine_stops_taking_work() -> None:
    engine = make_engine()

    async def always() -> None:
        raise RuntimeError("injected for good")

    engine.pool.scaler = always  # type: ignore[method-assign]
    async with engine:
        with anyio.fail_after(20):
            reason = await engine.wait_fatal()
        assert reason == (
            f"engine scaler failed: RuntimeError: injected for good"
            f" ({MAX_RESTARTS + 1} failures within 60s)"
        )
        assert engine.fatal_error == reason
        with pytest.raises(ShuttingDown):
            await engine.submit(TaskSpec(type="default_task"))


async def test_a_job_that_may_not_restart_reports_at_once() -> None:
    reasons: list[str] = []

    async def broken() -> None:
        raise ValueError("first line\nsecond line")

    with anyio.fail_after(5):
        await supervised("the flusher", broken, reasons.append, restart=False)
    assert reasons == ["the flusher failed: ValueError: first line"]


async def test_a_job_that_returns_is_not_restarted_and_cancellation_passes_through() -> None:
    runs: list[int] = []

    async def done() -> None:
        runs.append(1)

    await supervised("done", done, pytest.fail, restart=True)
    assert runs == [1]

    started = anyio.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    with anyio.move_on_after(10) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(supervised, restart=True), "forever", forever, pytest.fail)
            await started.wait()
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
