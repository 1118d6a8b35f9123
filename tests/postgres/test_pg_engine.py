"""One engine over the cluster store, against the real PostgreSQL (one schema per test)."""

from __future__ import annotations

from typing import Any

import anyio
import psycopg
import pytest
from enginekit import submit
from pgkit import pg_config, pg_engine, rows, wait_final_pg, wait_task

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.errors import AlreadyFinished, AmbiguousId, NotFound, QueueFull
from workerpool_tui.core.handlers import TaskContext

pytestmark = pytest.mark.anyio


async def test_a_task_runs_and_its_row_holds_the_result(pg_url: str, pg_schema: str) -> None:
    engine, store = pg_engine(pg_url, pg_schema)
    async with engine:
        task = await submit(engine, "default_task", {"x": 1, "big": 2**63 - 1})
        assert task.seq > 0  # numbered by the database
        done = await wait_final_pg(engine, task.id)
        assert done.status is TaskStatus.COMPLETED
        assert done.result["payload"] == {"x": 1, "big": 2**63 - 1}
        assert done.instance == store.name
        again = await engine.lookup(task.id[:6])
        assert again.id == task.id
        await engine.journal.commit()  # the finish is written with the next batch
        (row,) = rows(pg_url, pg_schema)
        assert row[:4] == (task.id, "completed", store.name, 1)
        assert row[4] is None  # the lease is released
        assert (await store._pg.refresh_counts()).completed == 1


async def test_listing_search_and_counts_are_queries(pg_url: str, pg_schema: str) -> None:
    ids = iter([f"aaaa0000000000{i:02d}" for i in range(10)] + ["bbbb000000000000"])
    engine, store = pg_engine(pg_url, pg_schema)
    engine._new_id = lambda: next(ids)
    async with engine:
        engine.pause()
        for _ in range(10):
            await submit(engine, "default_task")
        other = await submit(engine, "example_task")
        found, total = await engine.list_tasks(limit=3)
        assert total == 11 and [t.id for t in found] == [
            other.id,
            "aaaa000000000009",
            "aaaa000000000008",
        ]
        found, total = await engine.list_tasks(q="EXAMPLE")
        assert (total, [t.id for t in found]) == (1, [other.id])
        found, total = await engine.list_tasks(q="bbbb")
        assert total == 1
        found, total = await engine.list_tasks(type_="default_task", limit=2, offset=8)
        assert total == 10 and [t.id for t in found] == ["aaaa000000000001", "aaaa000000000000"]
        with pytest.raises(AmbiguousId) as info:
            await engine.lookup("aaaa")
        assert len(info.value.candidates) == 10
        with pytest.raises(NotFound):
            await engine.lookup("cccc")
        counts = await store._pg.refresh_counts()
        assert (counts.pending, counts.total) == (11, 11)
        snap = await engine.snapshot(limit=5)
        assert snap[0].id == other.id and len(snap) == 5


async def test_cancel_pending_in_the_database_and_running_here(pg_url: str, pg_schema: str) -> None:
    gate = anyio.Event()

    async def blocked(ctx: TaskContext, payload: dict[str, Any]) -> None:
        await gate.wait()

    engine, _ = pg_engine(
        pg_url, pg_schema, {"blocked": blocked}, worker={"min_workers": 1, "max_workers": 1}
    )
    async with engine:
        running = await submit(engine, "blocked")
        await wait_task(engine, running.id, lambda t: t.status is TaskStatus.RUNNING)
        waiting = await submit(engine, "blocked")
        cancelled = await engine.cancel(waiting.id)
        assert cancelled.status is TaskStatus.CANCELLED
        stopped = await engine.cancel(running.id[:8])
        assert stopped.status is TaskStatus.CANCELLED
        with pytest.raises(AlreadyFinished):
            await engine.cancel(running.id)
        await wait_final_pg(engine, running.id)
        statuses = {r[0]: r[1] for r in rows(pg_url, pg_schema)}
        assert statuses == {running.id: "cancelled", waiting.id: "cancelled"}


async def test_a_retry_goes_back_to_the_cluster_and_runs_again(pg_url: str, pg_schema: str) -> None:
    attempts: list[int] = []

    async def flaky(ctx: TaskContext, payload: dict[str, Any]) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError(f"flake {ctx.attempt}")
        return ctx.attempt

    engine, _ = pg_engine(pg_url, pg_schema, {"flaky": flaky}, task={"retry_backoff": "50ms"})
    async with engine:
        task = await submit(engine, "flaky", max_retries=5)
        done = await wait_final_pg(engine, task.id)
    assert done.status is TaskStatus.COMPLETED and done.result == 3
    assert attempts == [1, 2, 3]
    assert rows(pg_url, pg_schema)[0][1:4] == ("completed", done.instance, 3)


async def test_concurrent_submissions_share_transactions(pg_url: str, pg_schema: str) -> None:
    engine, store = pg_engine(pg_url, pg_schema)
    async with engine:
        engine.pause()
        before = store.journal.batches
        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(submit, engine, "default_task", {"i": i})
        batches = store.journal.batches - before
        assert len(rows(pg_url, pg_schema)) == 100
        assert batches < 50, batches  # group commit: far fewer transactions than submissions


async def test_the_queue_capacity_bounds_the_cluster_backlog(pg_url: str, pg_schema: str) -> None:
    cfg = pg_config(
        pg_url,
        pg_schema,
        task={"queue_capacity": 5, "max_tracked_tasks": 100, "max_concurrent_tasks": 4},
        worker={"min_workers": 1, "max_workers": 1},
    )
    engine, _ = pg_engine(pg_url, pg_schema, config=cfg)
    async with engine:
        engine.pause()
        await engine.submit_many([TaskSpec(type="default_task")] * 5)
        with pytest.raises(QueueFull):
            await engine.submit_many([TaskSpec(type="default_task")])
        assert len(rows(pg_url, pg_schema)) == 5


async def test_a_schema_newer_than_the_program_is_refused(pg_url: str, pg_schema: str) -> None:
    engine, _ = pg_engine(pg_url, pg_schema)
    async with engine:
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {pg_schema}.meta SET value = '99' WHERE key = 'schema_version'")
    from workerpool_tui.core.errors import StoreError

    again, _ = pg_engine(pg_url, pg_schema)
    with pytest.raises(StoreError, match=r"version 99, newer than this workerpool-tui"):
        async with again:
            pass


async def test_an_idle_instance_makes_at_most_one_query_a_second(
    pg_url: str, pg_schema: str
) -> None:
    engine, store = pg_engine(pg_url, pg_schema, store={"heartbeat": "5s", "lease": "30s"})
    async with engine:
        task = await submit(engine, "default_task")
        await wait_final_pg(engine, task.id)
        await anyio.sleep(1.0)  # settle: the last claims and writes are done
        before = store.pool.checkouts
        await anyio.sleep(4.0)  # idle: what it does on its own, over a fixed window
        used = store.pool.checkouts - before
    assert used <= 4, f"{used} queries in 4 s of idleness"


async def test_a_submission_does_not_wait_behind_a_blocked_change(
    pg_url: str, pg_schema: str
) -> None:
    """New tasks and changes of held tasks are written by two lanes: a submission waits
    for its own ``INSERT`` only, not for an ``UPDATE`` in flight (here one blocked by a
    row lock another session holds)."""
    release = anyio.Event()

    async def hold(ctx: TaskContext, payload: dict[str, Any]) -> None:
        await release.wait()

    engine, _ = pg_engine(pg_url, pg_schema, handlers={"hold": hold})
    async with engine:
        held = await submit(engine, "hold")
        await wait_task(engine, held.id, lambda t: t.status is TaskStatus.RUNNING, "running")
        await engine.journal.commit()  # 'running' is in its row: nothing else to write
        async with await psycopg.AsyncConnection.connect(pg_url) as locker:
            await locker.execute(
                f"SELECT 1 FROM {pg_schema}.tasks WHERE id = %s FOR UPDATE", (held.id,)
            )
            release.set()  # its finish is now an UPDATE waiting for the lock
            await wait_task(engine, held.id, lambda t: t.status.final, "finished in memory")
            with anyio.fail_after(10):
                new = await engine.submit(TaskSpec(type="hold", payload={}))
            (row,) = rows(pg_url, pg_schema, f"id = '{new.id}'")  # durable: it was answered
            assert row[1] in ("pending", "running")  # it may be claimed already
            assert rows(pg_url, pg_schema, f"id = '{held.id}'")[0][1] == "running"
            await locker.rollback()
        await engine.journal.commit()  # the blocked change went through once unlocked
        assert rows(pg_url, pg_schema, f"id = '{held.id}'")[0][1] == "completed"
