"""The writer process: it lives and dies with its engine, and its death is reported."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest
from store_helpers import make_engine, open_ids, store_config, wait_no_writer, writer_pids

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.errors import StoreUnavailable

pytestmark = pytest.mark.anyio


async def test_the_writer_process_goes_with_the_engine(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, journal = make_engine(store_config(db), db)
    async with engine:
        assert len(writer_pids(db)) == 1
        task = await engine.submit(TaskSpec(type="default_task", payload={"n": 1}))
        assert (await engine.wait_finished(task.id)).status is TaskStatus.COMPLETED
    assert not writer_pids(db)  # stopped and reaped before the engine returned
    assert journal.writer_cpu_s > 0  # its last answer came
    assert await open_ids(db) == [task.id]


async def test_a_dead_writer_fails_commits_and_shutdown_still_unlocks(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    with pytest.raises(StoreUnavailable, match="writer process stopped"):  # at shutdown too
        async with engine:
            first = await engine.submit(TaskSpec(type="default_task", payload={"n": 1}))
            (pid,) = writer_pids(db)
            os.kill(pid, signal.SIGKILL)
            await wait_no_writer(db)
            with (
                anyio.fail_after(10),
                pytest.raises(StoreUnavailable, match="writer process stopped"),
            ):
                await engine.submit(TaskSpec(type="default_task", payload={"n": 2}))
            # The refused submission left no trace: not listed, not queued.
            assert [t.id for t in (await engine.list_tasks())[0]] == [first.id]
            assert len(engine.queue) == 0
            # A store that cannot write any more is fatal: the owner shuts down non-zero.
            assert engine.fatal_error is not None
            assert "writer process stopped" in engine.fatal_error
    assert engine.closed
    # What was acknowledged before is there; the lock went with the engine.
    assert first.id in await open_ids(db)


async def test_the_writer_ignores_signals_meant_for_the_parent(tmp_path: Path) -> None:
    """Ctrl-C or a TERM to the process group must not stop the writer before the final
    commit: the parent stops it by closing its input."""
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        first = await engine.submit(TaskSpec(type="default_task", payload={"n": 1}))
        (pid,) = writer_pids(db)  # it has answered a batch: it is past its start-up
        assert os.getpgid(pid) != os.getpgid(0)  # and out of the terminal's reach
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(pid, sig)
        second = await engine.submit(TaskSpec(type="default_task", payload={"n": 2}))
        assert writer_pids(db) == {pid}
    assert await open_ids(db) == [first.id, second.id]
