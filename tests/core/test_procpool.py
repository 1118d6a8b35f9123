"""Process isolation (issue #13): tasks of ``isolation = "process"`` types in worker
processes, with the handler contract across the pipe, preemptive cancel and timeout,
crashes that fail only their task, recycling, and no child left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import prochandlers
import pytest
from enginekit import (
    child_pids,
    make_config,
    submit,
    wait_final,
    wait_for,
    wait_until,
)

from workerpool_tui.config import ConfigError, load_config
from workerpool_tui.config_types import parse_bytes
from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.core.builtin import builtin_types
from workerpool_tui.core.handlers import TaskType, TypeRegistry, task_type

pytestmark = pytest.mark.anyio

KILL_GRACE = 0.5
NAMES = ("cpu", "chatty", "async_answer", "boom", "crash", "sleepy", "stubborn", "not_json")
NAMES += ("hog", "pid", "echo", "parents")


def _types() -> TypeRegistry:
    extra: list[TaskType] = [
        task_type(name, getattr(prochandlers, name), isolation="process") for name in NAMES
    ]
    return TypeRegistry([*builtin_types(), *extra])


def _engine(processes: int = 1, **worker: Any) -> Engine:
    cfg = make_config(
        worker={"processes": processes, "kill_grace": KILL_GRACE, **worker},
    )
    return Engine(cfg, types=_types())


def _children(engine: Engine) -> Callable[[], set[int]]:
    return lambda: set(engine.procs.pids()) if engine.procs else set()


async def test_results_progress_logs_and_errors_cross_the_pipe() -> None:
    async with _engine() as engine:
        seen: list[tuple[float, str | None]] = []
        task = await submit(engine, "chatty")

        def progressed() -> bool:
            if task.progress == 50.0:
                seen.append((task.progress, task.message))
            return task.status.final

        await wait_until(engine, progressed, "chatty to end")
        assert task.status is TaskStatus.COMPLETED, task.error
        assert task.result["pid"] != os.getpid()
        assert task.result["pid"] in engine.procs.pids()
        assert (task.result["attempt"], task.result["task_id"]) == (1, task.id)
        assert any("a line from the child" in str(line) for line in task.logs or [])
        assert seen == [] or seen[0] == (50.0, "half way")

        answer = await wait_final(engine, await submit(engine, "async_answer"))
        assert (answer.status, answer.result) == (TaskStatus.COMPLETED, 42)

        failed = await wait_final(engine, await submit(engine, "boom"))
        assert failed.status is TaskStatus.FAILED
        assert failed.error is not None
        assert (failed.error.type, failed.error.message) == ("ValueError", "a bad thing happened")
        assert "prochandlers.py" in (failed.error.traceback or "")

        odd = await wait_final(engine, await submit(engine, "not_json"))
        assert odd.status is TaskStatus.FAILED and odd.error is not None
        assert odd.error.type == "invalid_result"


async def test_a_payload_and_result_larger_than_the_socket_buffer_cross_whole() -> None:
    blob = "x" * (4 << 20)  # far past a socket pair's buffer: the frame goes in pieces
    async with _engine() as engine:
        for _ in range(2):
            task = await wait_final(engine, await submit(engine, "echo", {"blob": blob}))
            assert task.status is TaskStatus.COMPLETED, task.error
            assert task.result == {"blob": blob}


@pytest.mark.parametrize("handler", ["sleepy", "stubborn"])
async def test_cancel_preempts_whatever_the_handler_does(handler: str) -> None:
    async with _engine() as engine:
        before = set(engine.procs.pids())
        task = await submit(engine, handler)
        await wait_until(engine, lambda: task.progress == 1.0, "the handler to start")
        start = time.monotonic()
        await engine.cancel(task.id)
        took = time.monotonic() - start
        assert task.status is TaskStatus.CANCELLED
        assert took < KILL_GRACE + 1.0, took  # grace + 200 ms, with room for a loaded machine
        if handler == "sleepy":  # it stopped at the signal: the same process goes on
            assert set(engine.procs.pids()) == before
            assert engine.procs.restarts == 0
        else:  # killed after the grace, and replaced
            assert engine.procs.restarts == 1
            assert set(engine.procs.pids()) != before
        again = await wait_final(engine, await submit(engine, "pid"))
        assert again.status is TaskStatus.COMPLETED
        assert again.result in engine.procs.pids()


async def test_a_timeout_preempts_and_fails_the_task() -> None:
    async with _engine() as engine:
        task = await submit(engine, "stubborn", timeout_s=0.3)
        done = await wait_final(engine, task)
        assert done.status is TaskStatus.FAILED and done.error is not None
        assert done.error.type == "timeout"
        assert done.finished_at is not None and done.started_at is not None
        assert done.finished_at - done.started_at < 0.3 + KILL_GRACE + 1.0


@pytest.mark.parametrize(("payload", "words"), [({}, "exit code 3"), ({"signal": 1}, "SIGSEGV")])
async def test_a_crash_fails_only_its_task_and_the_process_is_replaced(
    payload: dict[str, Any], words: str
) -> None:
    async with _engine(processes=2) as engine:
        task = await wait_final(engine, await submit(engine, "crash", payload))
        assert task.status is TaskStatus.FAILED and task.error is not None
        assert task.error.type == "worker_crashed"
        assert words in task.error.message
        assert engine.procs.restarts == 1
        assert len(engine.procs.pids()) == 2
        ok = await wait_final(engine, await submit(engine, "cpu", {"n": 10}))
        assert ok.status is TaskStatus.COMPLETED


async def test_a_process_is_recycled_after_max_tasks_per_process() -> None:
    async with _engine(max_tasks_per_process=2) as engine:
        pids = [(await wait_final(engine, await submit(engine, "pid"))).result for _ in range(4)]
        assert pids[0] == pids[1] != pids[2] == pids[3]
        assert engine.procs.restarts == 0  # a recycle is no restart


async def test_memory_limit_recycles_after_the_task_and_kills_past_twice() -> None:
    async with _engine(process_memory_limit="80MiB") as engine:
        first = await wait_final(engine, await submit(engine, "hog", {"mb": 90}))
        assert first.status is TaskStatus.COMPLETED
        second = await wait_final(engine, await submit(engine, "pid"))
        assert second.result != first.result  # grown past the limit: replaced after its task
        big = await wait_final(engine, await submit(engine, "hog", {"mb": 200, "hold": 30}))
        assert big.status is TaskStatus.FAILED and big.error is not None
        assert big.error.type == "memory_limit"
        assert (await wait_final(engine, await submit(engine, "pid"))).status.value == "completed"


async def test_shutdown_leaves_no_worker_process() -> None:
    engine = _engine(processes=2)
    async with engine:
        pids = set(engine.procs.pids())
        await wait_until(engine, lambda: True)
        task = await submit(engine, "sleepy")
        await wait_until(engine, lambda: task.progress == 1.0, "the handler to start")
        assert pids <= child_pids()
    await wait_for(lambda: not (pids & child_pids()), "the worker processes to exit")
    # Gone from the kernel's list of this process's children: exited and reaped.


def test_a_process_type_needs_an_importable_handler() -> None:
    def local(ctx: Any, payload: dict[str, Any]) -> None:
        return None

    cfg = make_config(task={"types": {"local": {"isolation": "process"}}})
    types = TypeRegistry([*builtin_types(), task_type("local", local)])
    with pytest.raises(ConfigError, match="importable"):
        Engine(cfg, types=types)


async def test_no_process_is_started_without_a_process_type() -> None:
    before = child_pids()
    async with Engine(make_config(), types=TypeRegistry(builtin_types())) as engine:
        assert engine.procs is None
        assert child_pids() <= before


@pytest.mark.parametrize(
    ("worker", "key"),
    [
        ({"processes": -1}, "worker.processes"),
        ({"max_tasks_per_process": 0}, "worker.max_tasks_per_process"),
        ({"process_memory_limit": "lots"}, "worker.process_memory_limit"),
        ({"kill_grace": "soon"}, "worker.kill_grace"),
    ],
)
def test_a_bad_worker_process_setting_is_one_line_naming_the_key(
    worker: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={}, overrides={"worker": worker})
    assert key in str(err.value) and "\n" not in str(err.value)


def test_sizes_parse_in_bytes() -> None:
    assert parse_bytes("") == 0
    assert parse_bytes("512MB") == 512 * 10**6
    assert parse_bytes("2GiB") == 2 * 2**30
    assert parse_bytes("4096") == 4096
    with pytest.raises(ValueError):
        parse_bytes("-1MB")


async def test_a_handler_the_child_cannot_import_fails_its_task_clearly() -> None:
    types = _types()
    types.add(
        task_type("ghost", prochandlers.pid, isolation="process", target="no_such_module_here:pid")
    )
    cfg = make_config(worker={"processes": 1, "kill_grace": KILL_GRACE})
    async with Engine(cfg, types=types) as engine:
        task = await wait_final(engine, await submit(engine, "ghost"))
        assert task.status is TaskStatus.FAILED and task.error is not None
        assert task.error.type == "ModuleNotFoundError"
        assert "no_such_module_here" in task.error.message
        ok = await wait_final(engine, await submit(engine, "pid"))  # the child goes on
        assert ok.status is TaskStatus.COMPLETED and engine.procs is not None
        assert engine.procs.restarts == 0


async def test_a_process_handler_reads_its_parents_results() -> None:
    async with _engine() as engine:
        first, second, child = await engine.submit_many(
            [
                TaskSpec(type="echo", payload={"n": 1}),
                TaskSpec(type="async_answer"),
                TaskSpec(type="parents", depends_on=("$0", "$1")),
            ]
        )
        done = await wait_final(engine, child)
        assert done.status is TaskStatus.COMPLETED, done.error
        assert done.result == {first.id: {"n": 1}, second.id: 42}
        alone = await wait_final(engine, await submit(engine, "parents"))
        assert alone.result == {}
