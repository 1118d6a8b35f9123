"""Issue 14 at the speed of one statement per chunk: a bulk cancel in the cluster cancels
the pending tasks no instance holds by the chunk (``store.cancel_pending``), with what a
single cancel writes and the trigger's cascade to waiting children; tasks an instance
holds or runs keep the single cancel."""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from typing import Any

import anyio
import psycopg
import pytest
from enginekit import submit, wait_for
from pgkit import pg_engine, wait_final_pg

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.bulk import CHUNK, PAGE, BulkFilter, run_bulk
from workerpool_tui.core.handlers import TaskContext

pytestmark = pytest.mark.anyio

N = 5_000
CHILDREN = 100
_SEEN: ContextVar[list[str] | None] = ContextVar("bulkfast_statements", default=None)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement a cursor executes in a context where :data:`_SEEN` is set is
    appended to it (set by the test in its own task once the engine runs: the engine's
    background tasks copied their contexts before, and are not counted)."""
    real = psycopg.AsyncCursor.execute

    async def counted(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        seen = _SEEN.get()
        if seen is not None:
            seen.append(query if isinstance(query, str) else repr(query))
        return await real(self, query, params, **kw)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def _noop(ctx: TaskContext, payload: dict[str, Any]) -> None:
    return None


async def test_a_bulk_cancel_of_5000_pending_is_one_statement_per_chunk(
    pg_url: str, pg_schema: str, counting: None
) -> None:
    engine, _ = pg_engine(
        pg_url,
        pg_schema,
        {"child": _noop},
        task={"queue_capacity": 2 * N, "max_tracked_tasks": 4 * N},
    )
    async with engine:
        engine.pause()  # nobody claims: the tasks stay pending
        parents = await engine.submit_many([TaskSpec(type="default_task") for _ in range(N)])
        children = await engine.submit_many(
            [TaskSpec(type="child", depends_on=[p.id]) for p in parents[:CHILDREN]]
        )
        (grandchild,) = await engine.submit_many(
            [TaskSpec(type="child", depends_on=[children[0].id])]
        )
        statements: list[str] = []
        token = _SEEN.set(statements)  # counted: what this task runs
        try:
            result = await run_bulk(
                engine, "cancel", BulkFilter(status=[TaskStatus.PENDING], type="default_task")
            )
        finally:
            _SEEN.reset(token)
        # This instance's counts are the table's already (its followers' snapshot on the
        # summary reads them).
        counted = engine.index.counts()
        assert (counted.pending, counted.blocked, counted.cancelled) == (0, 0, N + CHILDREN + 1)
    assert (result.matched, result.changed, result.skipped) == (N, N, {})
    chunks = math.ceil(N / CHUNK)
    writes = [s for s in statements if "UPDATE" in s or "DELETE" in s or "INSERT" in s]
    assert len(writes) == chunks, writes[:3]
    # The match reads pages (a page and its count each), each chunk is quiet (SET LOCAL)
    # and one statement, the summary reads the counts and NOTIFYs: nothing per task.
    assert len(statements) <= 2 * (N // PAGE + 2) + 2 * chunks + 2, len(statements)

    by_status = dict(
        _query(pg_url, f"SELECT status, count(*) FROM {pg_schema}.tasks GROUP BY status")
    )
    assert by_status == {"cancelled": N + CHILDREN + 1}
    # As a single cancel writes it.
    assert _query(
        pg_url,
        f"SELECT count(*) FROM {pg_schema}.tasks WHERE type = 'default_task'"
        " AND message = 'cancelled by request' AND finished_at IS NOT NULL AND owner IS NULL",
    ) == [(N,)]
    # The children were cancelled with their parents, each naming its own.
    found = dict(_query(pg_url, f"SELECT id, message FROM {pg_schema}.tasks WHERE type = 'child'"))
    for parent, child in zip(parents, children, strict=False):
        assert found[child.id] == (
            f"cancelled: dependency_failed: parent {parent.id} ended cancelled"
        )
    assert found[grandchild.id] == (
        f"cancelled: dependency_failed: parent {children[0].id} ended cancelled"
    )
    counts = _query(
        pg_url,
        "SELECT sum(pending), sum(scheduled), sum(blocked), sum(running), sum(cancelled)"
        f" FROM {pg_schema}.counts",
    )
    assert counts == [(0, 0, 0, 0, N + CHILDREN + 1)]


async def test_cancel_pending_cancels_the_unclaimed_and_reports_the_others(
    pg_url: str, pg_schema: str
) -> None:
    release = anyio.Event()

    async def block(ctx: TaskContext, payload: dict[str, Any]) -> None:
        await release.wait()

    engine, store = pg_engine(pg_url, pg_schema, {"block": block, "child": _noop})
    async with engine:
        running = await submit(engine, "block")
        await wait_for(lambda: engine.pool.busy == 1, "the block task runs")
        done = await submit(engine, "default_task")
        await wait_final_pg(engine, done.id)
        await engine.journal.commit()
        engine.pause()
        parent = await submit(engine, "default_task")
        child = await submit(engine, "child", depends_on=[parent.id])
        later = await submit(
            engine, "default_task", run_at=time.time() + 3600
        )  # waiting for a time
        ids = [running.id, done.id, parent.id, later.id, "no-such-task"]
        outcome = await store.cancel_pending(ids)
        assert sorted(outcome.cancelled) == sorted([parent.id, later.id])
        assert outcome.others == {
            running.id: TaskStatus.RUNNING,  # claimed: left to the single cancel
            done.id: TaskStatus.COMPLETED,
        }
        # The child went with its parent: a later chunk finds it final.
        again = await store.cancel_pending([child.id, parent.id])
        assert again.cancelled == []
        assert again.others == {child.id: TaskStatus.CANCELLED, parent.id: TaskStatus.CANCELLED}
        assert (await store.cancel_pending([])).cancelled == []
        release.set()
        await wait_final_pg(engine, running.id)


async def test_held_and_running_tasks_keep_the_single_cancel(pg_url: str, pg_schema: str) -> None:
    release = anyio.Event()

    async def slow(ctx: TaskContext, payload: dict[str, Any]) -> None:
        await release.wait()

    handlers = {"slow": slow}
    a, _ = pg_engine(
        pg_url,
        pg_schema,
        handlers,
        task={"types": {"slow": {"concurrency": 1}}},
        worker={"min_workers": 3, "max_workers": 3},
    )
    b, _ = pg_engine(pg_url, pg_schema, handlers)
    async with a, b:
        b.pause()
        # A runs one slow task and holds two it claimed (pending here, running in the table).
        mine = [await submit(a, "slow") for _ in range(3)]
        await wait_for(lambda: a.gates.limits["slow"].held_count == 2, "A holds 2")
        a.pause()
        b.resume()
        theirs = await submit(b, "slow")  # B runs it
        await wait_for(lambda: b.pool.busy == 1, "B runs one")
        b.pause()
        loose = [await submit(a, "default_task") for _ in range(5)]
        held = [t for t in (a.get(m.id) for m in mine) if t and t.status is TaskStatus.PENDING]
        assert len(held) == 2

        result = await run_bulk(
            a, "cancel", BulkFilter(status=[TaskStatus.PENDING, TaskStatus.RUNNING])
        )
        assert (result.matched, result.changed, result.skipped) == (9, 9, {})
        for task in held:  # A's own records moved (and its journal writes them)
            assert a.get(task.id) is task and task.status is TaskStatus.CANCELLED
        await a.journal.commit()
        for task in [*mine, *loose]:
            assert (await wait_final_pg(a, task.id)).status is TaskStatus.CANCELLED
        assert (await wait_final_pg(b, theirs.id)).status is TaskStatus.CANCELLED
        release.set()
    rows = _query(pg_url, f"SELECT status, count(*) FROM {pg_schema}.tasks GROUP BY status")
    assert rows == [("cancelled", 9)]
