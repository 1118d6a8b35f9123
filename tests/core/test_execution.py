"""Running tasks: cancel, timeout, exceptions, retries, sync handlers in threads (SPEC §5, §6)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import anyio
import pytest
from enginekit import (
    drain,
    make_config,
    make_engine,
    submit,
    task_events,
    wait_final,
    wait_for,
    wait_until,
)

from workerpool_tui.core import (
    AlreadyFinished,
    EventKind,
    NotFound,
    QueueFull,
    TaskSpec,
    TaskStatus,
)
from workerpool_tui.core.handlers import TaskContext

pytestmark = pytest.mark.anyio

ONE_WORKER = {"min_workers": 1, "max_workers": 1}


class Blocker:
    """A handler that reports when it started, blocks until released or cancelled, and
    records that its ``finally`` ran."""

    def __init__(self) -> None:
        self.started: dict[str, anyio.Event] = {}
        self.release = anyio.Event()
        self.finally_ran: list[str] = []
        self.cancelled: list[str] = []

    def started_event(self, task_id: str) -> anyio.Event:
        return self.started.setdefault(task_id, anyio.Event())

    async def __call__(self, ctx: TaskContext, payload: dict[str, Any]) -> str:
        self.started_event(ctx.task_id).set()
        try:
            await self.release.wait()
            return "released"
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(ctx.task_id)
            raise
        finally:
            self.finally_ran.append(ctx.task_id)

    async def wait_started(self, task_id: str) -> None:
        with anyio.fail_after(10):
            await self.started_event(task_id).wait()


# ------------------------------------------------------------------ cancel
async def test_cancel_pending_leaves_the_queue_at_once() -> None:
    ran: list[int] = []

    async def record(ctx: TaskContext, payload: dict[str, Any]) -> None:
        ran.append(payload["n"])

    async with make_engine({"record": record}) as engine:
        engine.pause()
        tasks = await engine.submit_many(
            [TaskSpec(type="record", payload={"n": n}) for n in range(3)]
        )
        assert engine.stats().queue.depth == 3
        sub = engine.bus.subscribe(name="observer")
        cancelled = await engine.cancel(tasks[1].id)
        # No await needed for the effect: it is already out of the queue and final.
        assert cancelled is tasks[1]
        assert cancelled.status is TaskStatus.CANCELLED
        assert cancelled.finished_at is not None
        assert cancelled.message == "cancelled by request"
        assert engine.stats().queue.depth == 2
        assert engine.stats().tasks.cancelled == 1
        assert engine.stats().tasks.pending == 2
        assert [e.kind for e in task_events(drain(sub))] == [EventKind.CANCELLED]
        with pytest.raises(AlreadyFinished):
            await engine.cancel(tasks[1].id)
        engine.resume()
        for task in (tasks[0], tasks[2]):
            assert (await wait_final(engine, task)).status is TaskStatus.COMPLETED
    assert ran == [0, 2]
    assert tasks[1].started_at is None
    assert tasks[1].attempts == 0


async def test_cancel_running_returns_once_the_handler_has_stopped() -> None:
    blocker = Blocker()
    cfg = make_config(worker=ONE_WORKER)
    async with make_engine({"block": blocker}, cfg) as engine:
        task = await submit(engine, "block")
        await blocker.wait_started(task.id)
        assert task.status is TaskStatus.RUNNING
        assert engine.pool_state().busy == 1
        result = await engine.cancel(task.id)
        # By the time cancel returns the handler has unwound (its finally ran).
        assert blocker.finally_ran == [task.id]
        assert blocker.cancelled == [task.id]
        assert result.status is TaskStatus.CANCELLED
        assert result.message == "cancelled by request"
        assert result.error is None
        assert result.worker is not None  # the worker that ran it, kept
        state = engine.pool_state()
        assert (state.busy, state.idle, state.current) == (0, 1, 1)
        with pytest.raises(AlreadyFinished, match="already cancelled"):
            await engine.cancel(task.id)
        # The worker is free and runs the next task.
        nxt = await submit(engine, "default_task", {"x": 1})
        assert (await wait_final(engine, nxt)).status is TaskStatus.COMPLETED
        assert nxt.worker == result.worker


async def test_cancel_unknown_id_is_not_found() -> None:
    async with make_engine() as engine:
        with pytest.raises(NotFound):
            await engine.cancel("does-not-exist")


async def test_handler_that_swallows_cancellation_is_still_cancelled() -> None:
    started = anyio.Event()

    async def stubborn(ctx: TaskContext, payload: dict[str, Any]) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            pass  # rude, but the engine must not count it as a success
        return "done anyway"

    async with make_engine({"stubborn": stubborn}) as engine:
        task = await submit(engine, "stubborn")
        with anyio.fail_after(10):
            await started.wait()
        await engine.cancel(task.id)
        assert task.status is TaskStatus.CANCELLED
        assert task.result is None


# ------------------------------------------------------------------ timeout and exceptions
async def test_timeout_fails_with_type_timeout_and_the_worker_lives_on() -> None:
    blocker = Blocker()
    cfg = make_config(worker=ONE_WORKER)
    async with make_engine({"block": blocker}, cfg) as engine:
        task = await submit(engine, "block", timeout_s=0.05)
        done = await wait_final(engine, task)
        assert done.status is TaskStatus.FAILED
        assert done.error is not None
        assert done.error.type == "timeout"
        assert "0.05" in done.error.message
        assert blocker.finally_ran == [task.id]
        nxt = await submit(engine, "default_task")
        assert (await wait_final(engine, nxt)).status is TaskStatus.COMPLETED
        assert nxt.worker == task.worker


async def test_exception_fails_with_traceback_and_the_worker_runs_the_next_task() -> None:
    async def explode(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise ValueError("boom " + payload["why"])

    cfg = make_config(worker=ONE_WORKER)
    async with make_engine({"explode": explode}, cfg) as engine:
        bad = await submit(engine, "explode", {"why": "here"})
        good = await submit(engine, "default_task", {"k": "v"})
        await wait_final(engine, good)
        assert bad.status is TaskStatus.FAILED
        assert bad.error is not None
        assert bad.error.type == "ValueError"
        assert bad.error.message == "boom here"
        assert bad.error.traceback is not None
        assert "in explode" in bad.error.traceback
        assert "ValueError: boom here" in bad.error.traceback
        assert bad.finished_at is not None
        assert good.status is TaskStatus.COMPLETED
        assert good.worker == bad.worker
        assert engine.pool_state().current == 1
        stats = engine.stats().tasks
        assert (stats.failed, stats.completed) == (1, 1)


async def test_default_task_fail_flag() -> None:
    async with make_engine() as engine:
        task = await submit(engine, "default_task", {"fail": True})
        await wait_final(engine, task)
        assert task.status is TaskStatus.FAILED
        assert task.error is not None
        assert task.error.type == "DemoFailure"


# ------------------------------------------------------------------ retries
async def test_retries_with_exponential_backoff_then_success() -> None:
    seen_messages: list[str | None] = []
    attempts: list[int] = []

    def flaky_factory() -> Any:
        async def flaky(ctx: TaskContext, payload: dict[str, Any]) -> int:
            attempts.append(ctx.attempt)
            if ctx.attempt < 3:
                raise RuntimeError(f"flake {ctx.attempt}")
            return ctx.attempt

        return flaky

    cfg = make_config(task={"retry_backoff": "10ms"})
    engine = make_engine({"flaky": flaky_factory()}, cfg)
    schedule_retry = engine.pool._schedule_retry

    def noting_retry(*args: Any) -> None:
        schedule_retry(*args)
        seen_messages.append(args[1].message)  # the note while it waits for its retry

    engine.pool._schedule_retry = noting_retry  # type: ignore[method-assign]
    async with engine:
        sub = engine.bus.subscribe(name="observer")
        task = await submit(engine, "flaky", max_retries=5)
        await wait_final(engine, task)
        kinds = [e.kind for e in task_events(drain(sub))]
    assert task.status is TaskStatus.COMPLETED
    assert task.result == 3
    assert task.attempts == 3
    assert attempts == [1, 2, 3]
    assert kinds.count(EventKind.RETRYING) == 2
    assert kinds.count(EventKind.STARTED) == 3
    assert kinds[0] is EventKind.CREATED
    assert kinds[-1] is EventKind.COMPLETED
    # The backoff doubles per attempt: 10 ms, then 20 ms.
    assert seen_messages[0] is not None and seen_messages[0].startswith("retry 1/5 in 0.01s")
    assert seen_messages[1] is not None and seen_messages[1].startswith("retry 2/5 in 0.02s")
    assert "RuntimeError: flake 2" in seen_messages[1]
    # Once it has run again, the retry note is history: the final message is not a retry.
    assert task.message is None


async def test_retries_exhausted_fail_after_max_retries() -> None:
    async def always(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise KeyError(ctx.attempt)

    cfg = make_config(task={"retry_backoff": "5ms", "default_max_retries": 2})
    async with make_engine({"always": always}, cfg) as engine:
        sub = engine.bus.subscribe(name="observer")
        task = await submit(engine, "always")
        await wait_final(engine, task)
        events = task_events(drain(sub))
    assert task.status is TaskStatus.FAILED
    assert task.attempts == 3  # one run + max_retries retries
    assert task.error is not None and task.error.type == "KeyError"
    # The final message describes the failure, not the last retry note.
    assert task.message == "KeyError: 3"
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.RETRYING) == 2
    assert kinds.count(EventKind.FAILED) == 1
    assert kinds[-1] is EventKind.FAILED


async def test_timeouts_are_retried_too() -> None:
    blocker = Blocker()
    async with make_engine({"block": blocker}) as engine:
        sub = engine.bus.subscribe(name="observer")
        task = await submit(engine, "block", timeout_s=0.02, max_retries=1)
        await wait_final(engine, task)
        kinds = [e.kind for e in task_events(drain(sub))]
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.type == "timeout"
    assert task.attempts == 2
    assert task.message is not None and task.message.startswith("timeout: timed out after")
    assert kinds.count(EventKind.RETRYING) == 1


async def test_cancel_during_retry_backoff() -> None:
    async def fails(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("no")

    cfg = make_config(task={"retry_backoff": "1h"})
    async with make_engine({"fails": fails}, cfg) as engine:
        task = await submit(engine, "fails", max_retries=3)
        await wait_until(engine, lambda: task.attempts == 1 and task.status is TaskStatus.PENDING)
        assert engine.stats().queue.depth == 0  # waiting out its backoff, not queued
        await engine.cancel(task.id)
        assert task.status is TaskStatus.CANCELLED
        assert engine.stats().queue.depth == 0
        assert engine.stats().tasks.pending == 0


# ------------------------------------------------------------------ sync handlers
async def test_sync_handler_runs_in_a_thread_and_reports_progress() -> None:
    gate = threading.Event()
    threads: list[int] = []

    def crunch(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.get_ident())
        ctx.log("crunching")
        ctx.progress(50, "half way")
        if not gate.wait(10):
            raise TimeoutError("the test never opened the gate")
        return {"n": payload["n"] * 2}

    async with make_engine({"crunch": crunch}) as engine:
        assert engine.types.get("crunch").is_async is False  # type: ignore[union-attr]
        sub = engine.bus.subscribe(name="observer")
        task = await submit(engine, "crunch", {"n": 21})
        seen: list[EventKind] = []
        with anyio.fail_after(10):
            while EventKind.PROGRESS not in seen:
                seen += [e.kind for e in task_events(await sub.get_batch())]
        assert task.progress == 50.0
        assert task.message == "half way"
        assert task.status is TaskStatus.RUNNING
        gate.set()
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    assert task.result == {"n": 42}
    assert task.progress == 100.0
    assert task.logs is not None and list(task.logs) == ["crunching"]
    assert threads and threads[0] != threading.get_ident()


async def test_sync_handler_is_cancelled_through_cancel_requested() -> None:
    stopped = threading.Event()

    def patient(ctx: TaskContext, payload: dict[str, Any]) -> str:
        ctx.progress(1, "waiting for cancel")
        try:
            if not ctx.cancel_requested.wait(10):
                return "never cancelled"
            return "noticed the cancel"
        finally:
            stopped.set()

    async with make_engine({"patient": patient}) as engine:
        task = await submit(engine, "patient")
        await wait_until(engine, lambda: task.progress == 1.0)
        await engine.cancel(task.id)
        assert stopped.is_set()  # the thread's handler returned before cancel did
        assert task.status is TaskStatus.CANCELLED
        assert task.result is None
        assert engine.pool_state().busy == 0


async def test_sync_handler_progress_after_cancel_raises_interrupted() -> None:
    outcome: list[str] = []

    def chatty(ctx: TaskContext, payload: dict[str, Any]) -> None:
        ctx.progress(1)
        ctx.cancel_requested.wait(10)
        try:
            ctx.progress(2)
        except Exception as exc:
            outcome.append(type(exc).__name__)
            raise

    async with make_engine({"chatty": chatty}) as engine:
        task = await submit(engine, "chatty")
        await wait_until(engine, lambda: task.progress == 1.0)
        await engine.cancel(task.id)
        assert task.status is TaskStatus.CANCELLED
    assert outcome == ["TaskInterrupted"]


async def test_sync_handler_timeout() -> None:
    def slow(ctx: TaskContext, payload: dict[str, Any]) -> None:
        ctx.cancel_requested.wait(10)

    async with make_engine({"slow": slow}) as engine:
        task = await submit(engine, "slow", timeout_s=0.05)
        await wait_final(engine, task)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None and task.error.type == "timeout"


async def test_handler_context_knows_id_attempt_and_keeps_logs() -> None:
    async def introspect(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
        for i in range(3):
            ctx.log(f"line {i}")
            ctx.progress(i * 10, f"step {i}")
        ctx.progress(250)  # clamped
        return {
            "id": ctx.task_id,
            "attempt": ctx.attempt,
            "progress": engine.get(ctx.task_id).progress,
        }  # type: ignore[union-attr]

    engine = make_engine({"introspect": introspect})
    async with engine:
        task = await submit(engine, "introspect")
        await wait_final(engine, task)
    assert task.result == {"id": task.id, "attempt": 1, "progress": 100.0}
    assert task.logs is not None and list(task.logs) == ["line 0", "line 1", "line 2"]
    assert task.message == "step 2"


async def test_a_handler_calling_sys_exit_fails_only_its_task() -> None:
    async def quits(ctx: TaskContext, payload: dict[str, Any]) -> None:
        sys.exit(3)

    def quits_in_thread(ctx: TaskContext, payload: dict[str, Any]) -> None:
        sys.exit(4)

    cfg = make_config(worker=ONE_WORKER)
    async with make_engine({"quits": quits, "quits_in_thread": quits_in_thread}, cfg) as engine:
        a = await submit(engine, "quits")
        b = await submit(engine, "quits_in_thread")
        after = await submit(engine, "default_task")
        await wait_final(engine, after)
        assert after.status is TaskStatus.COMPLETED
    for task, code in ((a, "3"), (b, "4")):
        assert task.status is TaskStatus.FAILED
        assert task.error is not None
        assert (task.error.type, task.error.message) == ("SystemExit", code)
        assert task.error.traceback is not None and "sys.exit" in task.error.traceback


async def test_an_exception_whose_str_fails_still_only_fails_its_task() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    async def raises(ctx: TaskContext, payload: dict[str, Any]) -> None:
        raise Unprintable

    async with make_engine({"raises": raises}, make_config(worker=ONE_WORKER)) as engine:
        bad = await submit(engine, "raises")
        good = await submit(engine, "default_task")
        await wait_final(engine, good)
        assert good.status is TaskStatus.COMPLETED
    assert bad.status is TaskStatus.FAILED
    assert bad.error is not None
    assert bad.error.type == "Unprintable"
    assert "could not be read" in bad.error.message
    assert bad.error.traceback is not None and "Unprintable" in bad.error.traceback


async def test_a_result_that_is_not_json_fails_the_task_not_the_adapters() -> None:
    class Opaque:
        pass

    async def opaque(ctx: TaskContext, payload: dict[str, Any]) -> Any:
        return {"value": Opaque()} if payload.get("nested") else Opaque()

    async def fine(ctx: TaskContext, payload: dict[str, Any]) -> Any:
        return payload["v"]

    async with make_engine({"opaque": opaque, "fine": fine}) as engine:
        flat = await submit(engine, "opaque")
        nested = await submit(engine, "opaque", {"nested": True})
        oks = [await submit(engine, "fine", {"v": v}) for v in (None, 1, 2.5, "s", True, [1], {})]
        for task in (flat, nested, *oks):
            await wait_final(engine, task)
    for task in (flat, nested):
        assert task.status is TaskStatus.FAILED
        assert task.result is None
        assert task.error is not None and task.error.type == "invalid_result"
        assert "Opaque" in task.error.message
    assert [t.status for t in oks] == [TaskStatus.COMPLETED] * len(oks)
    assert [t.result for t in oks] == [None, 1, 2.5, "s", True, [1], {}]


async def test_a_retry_re_enters_a_full_queue() -> None:
    fillers: list[Any] = []

    async def second_time_lucky(ctx: TaskContext, payload: dict[str, Any]) -> int:
        if ctx.attempt == 1:
            # Before failing: stop dispatch and fill the queue, so the retry finds it full.
            engine.pause()
            fillers.extend(engine.submit_nowait([TaskSpec(type="default_task")] * 2))
            raise RuntimeError("first attempt fails")
        return ctx.attempt

    cfg = make_config(worker=ONE_WORKER, task={"queue_capacity": 2, "retry_backoff": "10ms"})
    engine = make_engine({"lucky": second_time_lucky}, cfg)
    async with engine:
        task = await submit(engine, "lucky", max_retries=1)
        # The retry timer puts it back without an event of its own: watch the depth.
        await wait_for(lambda: len(engine.queue) == 3, "the retry to re-enter the full queue")
        assert task.status is TaskStatus.PENDING
        with pytest.raises(QueueFull):
            await submit(engine, "default_task")
        engine.resume()
        await wait_final(engine, task)
        for filler in fillers:
            await wait_final(engine, filler)
    assert task.status is TaskStatus.COMPLETED
    assert task.result == 2


async def test_a_finished_task_keeps_its_result_as_json_the_gc_never_walks() -> None:
    """A nested result stays encoded (``result_json``), so 100,000 finished tasks add no
    objects to a full garbage-collector pass; ``result`` gives the value back."""
    import gc

    async def nested(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {"outer": {"inner": [1, 2.5, "x"]}}

    async with make_engine({"nested": nested}) as engine:
        task = await submit(engine, "nested")
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    assert task.result_json is not None and not gc.is_tracked(task.result_json)
    assert bytes(task.result_json) == b'{"outer":{"inner":[1,2.5,"x"]}}'
    assert task.result == {"outer": {"inner": [1, 2.5, "x"]}}
