"""Delayed tasks, dependencies, unique keys and schedules in the cluster store (PG
schema 2), against the real PostgreSQL; two engines on one schema act as two instances."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec
import psycopg
import pytest
from enginekit import registry_with
from pgkit import pg_config, pg_engine, wait_final_pg

from workerpool_tui import __version__
from workerpool_tui.core import Engine, TaskSpec, TaskStatus
from workerpool_tui.core.clock import FakeClock
from workerpool_tui.core.errors import Duplicate, InvalidRequest
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.models import Task
from workerpool_tui.core.schedules import ScheduleSpec
from workerpool_tui.store.postgres import rows
from workerpool_tui.store.postgres.migrations import migration
from workerpool_tui.store.postgres.schema import SCHEMA_VERSION
from workerpool_tui.store.postgres.store import PostgresStore

pytestmark = pytest.mark.anyio


async def _until(engine: Engine, check: Callable[[], bool]) -> None:
    """Re-check after each bus delivery and at least every 50 ms, under a deadline."""
    async with engine.bus.subscribe(maxsize=10_000, name="test") as sub:
        with anyio.fail_after(10):
            while not check():
                with anyio.move_on_after(0.05):
                    await sub.get_batch()


def _spec(**kw: object) -> TaskSpec:
    return TaskSpec(type="default_task", **kw)  # type: ignore[arg-type]


async def test_delayed_task_waits_then_runs_and_run_now(pg_url: str, pg_schema: str) -> None:
    engine, store = pg_engine(pg_url, pg_schema)
    async with engine:
        (later,) = await engine.submit_many([_spec(run_at=time.time() + 3600)])
        (soon,) = await engine.submit_many([_spec(run_at=time.time() + 0.3)])
        await store._pg.refresh_counts()
        counts = engine.stats().tasks
        assert counts.scheduled == 2 and counts.pending == 0
        _, total = await engine.list_tasks(waiting="time")
        assert total == 2
        done = await wait_final_pg(engine, soon.id)
        assert done.status is TaskStatus.COMPLETED and done.started_at >= soon.created_at + 0.25
        await engine.run_now(later.id)
        assert (await wait_final_pg(engine, later.id)).status is TaskStatus.COMPLETED


async def test_pipeline_and_cascade_in_the_database(pg_url: str, pg_schema: str) -> None:
    engine, store = pg_engine(pg_url, pg_schema)
    async with engine:
        a, b, c = await engine.submit_many(
            [_spec(payload={"sleep": 0.1}), _spec(depends_on=("$0",)), _spec(depends_on=("$1",))]
        )
        done = [await wait_final_pg(engine, t.id) for t in (a, b, c)]
        assert [t.status for t in done] == [TaskStatus.COMPLETED] * 3
        assert done[0].finished_at <= done[1].started_at <= done[2].started_at
        bad, kid, grandkid = await engine.submit_many(
            [_spec(payload={"fail": True}), _spec(depends_on=("$0",)), _spec(depends_on=("$1",))]
        )
        ended = await wait_final_pg(engine, grandkid.id)
        assert ended.status is TaskStatus.CANCELLED
        assert ended.error is not None and ended.error.type == "dependency_failed"
        kid_now = await engine.lookup(kid.id)
        assert kid_now.error is not None and bad.id in kid_now.error.message
        late = await engine.submit_many([_spec(depends_on=(bad.id,))])
        late_now = await wait_final_pg(engine, late[0].id)
        assert late_now.status is TaskStatus.CANCELLED
        with pytest.raises(InvalidRequest, match="no task with id"):
            await engine.submit_many([_spec(depends_on=("nope",))])
        await store._pg.refresh_counts()
        assert engine.stats().tasks.blocked == 0


async def test_a_child_counts_only_its_parents_not_completed_yet(
    pg_url: str, pg_schema: str
) -> None:
    """``blocked`` at insert: a parent completed before counts for nothing, one still
    waiting counts (the INSERT looks its parents up by id; many finished tasks around)."""
    engine, _store = pg_engine(pg_url, pg_schema)
    async with engine:
        finished = await engine.submit_many([_spec() for _ in range(50)])
        for task in finished:
            await wait_final_pg(engine, task.id)
        (later,) = await engine.submit_many([_spec(run_at=time.time() + 3600)])
        done = finished[0].id
        free, held = await engine.submit_many(
            [_spec(depends_on=(done,)), _spec(depends_on=(done, later.id))]
        )
        with psycopg.connect(pg_url) as conn:
            blocked = dict(
                conn.execute(
                    f"SELECT id, blocked FROM {pg_schema}.tasks WHERE id = ANY(%s)",
                    ([free.id, held.id],),
                ).fetchall()
            )
        assert blocked == {free.id: 0, held.id: 1}
        assert (await wait_final_pg(engine, free.id)).status is TaskStatus.COMPLETED
        # A task without parents looks nothing up (the lookup read every finished task,
        # for every new row: inserts slowed down as the table filled).
        with psycopg.connect(pg_url) as conn:
            conn.execute(f"ANALYZE {pg_schema}.tasks")
            new = [Task(id=f"plan-{i}", type="default_task", payload={}) for i in range(100)]
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN (ANALYZE, COSTS off) " + rows.INSERT.format(s=pg_schema),
                    rows.insert_params(new),
                ).fetchall()
            )
            conn.rollback()
        assert "tasks_finished" not in plan and "(never executed)" in plan, plan


async def test_unique_keys_across_two_instances(pg_url: str, pg_schema: str) -> None:
    one, _ = pg_engine(pg_url, pg_schema)
    two, _ = pg_engine(pg_url, pg_schema)
    async with one, two:
        one.pause()
        two.pause()
        results: list[str] = []

        async def submit(engine: object) -> None:
            (task,) = await engine.submit_many(  # type: ignore[attr-defined]
                [_spec(unique_key="k", on_duplicate="return")]
            )
            results.append(task.id)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(submit, one if i % 2 else two)
        assert len(set(results)) == 1
        with pytest.raises(Duplicate) as info:
            await two.submit_many([_spec(unique_key="k")])
        assert info.value.existing_id == results[0]
        one.resume()
        await wait_final_pg(one, results[0])
        await one.journal.commit()  # the end is written: the key is free
        await two.journal.commit()
        (fresh,) = await two.submit_many([_spec(unique_key="k")])
        assert fresh.id != results[0]


async def test_a_schedule_fires_once_per_cluster(pg_url: str, pg_schema: str) -> None:
    tick = ScheduleSpec(name="tick", type="default_task", every=1.0)
    cfg = msgspec.structs.replace(pg_config(pg_url, pg_schema), schedule=[tick])
    one, _ = pg_engine(pg_url, pg_schema, config=cfg)
    two, _ = pg_engine(pg_url, pg_schema, config=cfg)
    async with one, two:
        with anyio.fail_after(10):
            while True:
                found, _ = await one.list_tasks(q="default_task", limit=1000)
                keys = [t.unique_key for t in found]
                if len(keys) >= 3:
                    break
                await anyio.sleep(0.2)
        assert len(keys) == len(set(keys))  # one task per due time, cluster-wide


def test_schema_1_is_migrated_to_the_current_one(pg_url: str, pg_schema: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(migration(0, pg_schema).encode())
        conn.execute(
            f"INSERT INTO {pg_schema}.tasks (id, type, status, priority, payload, max_retries,"
            " timeout_s, created_at) VALUES ('old', 'default_task', 'pending', 0, '{}', 0, 30, 1)"
        )
        conn.execute(migration(1, pg_schema).encode())
        row = conn.execute(
            f"SELECT blocked, depends_on, unique_key FROM {pg_schema}.tasks WHERE id = 'old'"
        ).fetchone()
        assert row == (0, None, None)
        for version in range(2, SCHEMA_VERSION):  # and on to the current schema
            conn.execute(migration(version, pg_schema).encode())
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (pg_schema,)
            ).fetchall()
        }
        assert "tasks_parents" in indexes and "tasks_children" not in indexes
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,)
        ).fetchall()
        assert ("type_settings",) in tables
        (source,) = conn.execute(  # schema 5: a bulk action's statements may be quiet
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s AND p.proname = 'notify_changes'",
            (pg_schema,),
        ).fetchone() or ("",)
        assert "workerpool.quiet" in source


async def test_other_instances_take_in_api_schedules(pg_url: str, pg_schema: str) -> None:
    clock = FakeClock(time.time())
    cfg = pg_config(pg_url, pg_schema)
    engines = [
        Engine(
            cfg,
            types=registry_with(None),
            store=PostgresStore(cfg, version=__version__),
            clock=clock,
        )
        for _ in range(2)
    ]
    async with engines[0] as one, engines[1] as two:
        with anyio.fail_after(10):
            await one.scheduler.ready.wait()
            await two.scheduler.ready.wait()
        await one.scheduler.add(ScheduleSpec(name="shared", type="default_task", every=3600.0))
        assert "shared" not in two.scheduler.schedules
        clock.advance(31)  # the next refresh
        await _until(two, lambda: "shared" in two.scheduler.schedules)
        await one.scheduler.delete("shared")
        clock.advance(31)
        await _until(two, lambda: "shared" not in two.scheduler.schedules)


async def test_a_deep_chain_cascades_in_one_go(pg_url: str, pg_schema: str) -> None:
    """A failed parent cancels a chain of 1,000 descendants: the cascade is not limited by
    how deep PostgreSQL lets triggers nest (``max_stack_depth``)."""
    engine, _ = pg_engine(pg_url, pg_schema)
    async with engine:
        depth = 1_000
        specs = [_spec(payload={"sleep": 0.2, "fail": True})]
        specs += [_spec(depends_on=(f"${i}",)) for i in range(depth)]
        tasks = await engine.submit_many(specs)
        last = await wait_final_pg(engine, tasks[-1].id)
        assert last.status is TaskStatus.CANCELLED
        assert last.error is not None and last.error.type == "dependency_failed"


async def test_children_of_a_task_come_from_the_parents_index(pg_url: str, pg_schema: str) -> None:
    engine, _store = pg_engine(pg_url, pg_schema)
    async with engine:
        a, b, c, _d = await engine.submit_many(
            [
                _spec(),
                _spec(depends_on=("$0",)),
                _spec(depends_on=("$0",), run_at=time.time() + 3600),
                _spec(depends_on=("$1",)),
            ]
        )
        assert (await wait_final_pg(engine, b.id)).status is TaskStatus.COMPLETED
        found, total = await engine.list_tasks(parent=a.id)
        assert total == 2 and [t.id for t in found] == [c.id, b.id]  # the grandchild is not
        found, total = await engine.list_tasks(parent=a.id, status=[TaskStatus.PENDING])
        assert (total, [t.id for t in found]) == (1, [c.id])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # tiny table: ask whether the index serves
        plan = conn.execute(
            f"EXPLAIN SELECT id FROM {pg_schema}.tasks"
            " WHERE depends_on @> ARRAY[%s]::text[] AND depends_on IS NOT NULL",
            (a.id,),
        ).fetchall()
        assert "tasks_parents" in " ".join(str(r[0]) for r in plan)


async def test_parent_results_of_parents_run_on_another_instance(
    pg_url: str, pg_schema: str
) -> None:
    async def make(ctx: TaskContext, payload: dict[str, Any]) -> Any:
        return {"made_by": payload["by"]}

    seen: dict[str, Any] = {}

    async def use(ctx: TaskContext, payload: dict[str, Any]) -> Any:
        seen.update(ctx.parent_results)
        return len(seen)

    handlers = {"make": make, "use": use}
    first, _ = pg_engine(pg_url, pg_schema, handlers)
    async with first:  # instance one runs a parent and leaves
        (far,) = await first.submit_many([TaskSpec(type="make", payload={"by": "one"})])
        assert (await wait_final_pg(first, far.id)).status is TaskStatus.COMPLETED
    second, _ = pg_engine(pg_url, pg_schema, handlers)
    async with second:
        assert second.get(far.id) is None  # not held here: only the store knows it
        (near,) = await second.submit_many([TaskSpec(type="make", payload={"by": "two"})])
        assert (await wait_final_pg(second, near.id)).status is TaskStatus.COMPLETED
        (child,) = await second.submit_many([TaskSpec(type="use", depends_on=(far.id, near.id))])
        done = await wait_final_pg(second, child.id)
        assert done.status is TaskStatus.COMPLETED, done.error
    assert seen == {far.id: {"made_by": "one"}, near.id: {"made_by": "two"}}


async def test_type_settings_reach_the_cluster_and_survive_a_restart(
    pg_url: str, pg_schema: str
) -> None:
    def limits(engine: Engine) -> tuple[int, str, bool]:
        limit = engine.gates.limits.get("default_task")
        return (
            (0, "", False) if limit is None else (limit.concurrency, limit.rate_limit, limit.paused)
        )

    one, _ = pg_engine(pg_url, pg_schema)
    two, _ = pg_engine(pg_url, pg_schema)
    async with one, two:
        await one.type_settings.patch("default_task", concurrency=3, paused=True)
        assert limits(one) == (3, "", True)
        # announced (NOTIFY): the other instance reads the table again
        await _until(two, lambda: limits(two) == (3, "", True))
        await two.type_settings.patch("default_task", paused=False)
        await _until(one, lambda: limits(one) == (3, "", False))
    again, _ = pg_engine(pg_url, pg_schema)
    async with again:  # a restart: the cluster's settings, before any task is dispatched
        assert limits(again) == (3, "", False)
