"""Issue 14 over the cluster store: bulk actions act on every instance's tasks and delete
rows from PostgreSQL; ``/metrics`` carries the instance and one reporter of cluster-wide
gauges."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import submit
from pgkit import pg_engine, rows, wait_claimed, wait_final_pg, wait_task
from prometheus_client.parser import text_string_to_metric_families

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.bulk import BulkFilter, run_bulk
from workerpool_tui.core.errors import Duplicate
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.logs import read_logs
from workerpool_tui.server.broadcast import Broadcaster
from workerpool_tui.server.limits import Limits
from workerpool_tui.server.metrics import MetricsExporter

pytestmark = pytest.mark.anyio


async def test_bulk_cancel_and_delete_in_the_cluster(pg_url: str, pg_schema: str) -> None:
    engine, _ = pg_engine(pg_url, pg_schema)
    async with engine:
        engine.pause()
        pending = [await submit(engine, "default_task") for _ in range(4)]
        result = await run_bulk(engine, "cancel", BulkFilter(status=[TaskStatus.PENDING]))
        assert (result.matched, result.changed) == (4, 4)
        for task in pending:
            assert (await wait_final_pg(engine, task.id)).status is TaskStatus.CANCELLED
        await engine.journal.commit()
        gone = await run_bulk(engine, "delete", BulkFilter(status=[TaskStatus.CANCELLED]))
        assert (gone.matched, gone.changed, gone.skipped) == (4, 4, {})
        assert rows(pg_url, pg_schema) == []
        engine.resume()
        done = await submit(engine, "default_task")
        await wait_final_pg(engine, done.id)
        await engine.journal.commit()
        # Not final: skipped, and its row stays.
        engine.pause()
        waiting = await submit(engine, "default_task")
        again = await run_bulk(engine, "delete", BulkFilter())
        assert (again.matched, again.changed, again.skipped) == (2, 1, {"not_final": 1})
        assert [r[0] for r in rows(pg_url, pg_schema)] == [waiting.id]


async def test_metrics_carry_the_instance_and_one_reporter(pg_url: str, pg_schema: str) -> None:
    first, _ = pg_engine(pg_url, pg_schema, store={"instance_name": "alpha"})
    second, _ = pg_engine(pg_url, pg_schema, store={"instance_name": "beta"})
    async with first:
        await anyio.sleep(0.05)  # alpha joins first
        async with second:
            task = await submit(first, "default_task")
            await wait_final_pg(first, task.id)
            for engine in (first, second):
                await wait_claimed(engine)
            texts = {}
            for engine, name in ((first, "alpha"), (second, "beta")):
                exporter = MetricsExporter(engine, Broadcaster(engine, Limits()))
                texts[name] = (await exporter.scrape()).decode()
    families = {
        name: {f.name: f for f in text_string_to_metric_families(text)}
        for name, text in texts.items()
    }
    for name, found in families.items():
        workers = found["workerpool_workers_current"].samples[0]
        assert workers.labels == {"instance": name}
    submitted = families["alpha"]["workerpool_tasks_submitted"].samples
    assert [(s.labels, s.value) for s in submitted] == [
        ({"instance": "alpha", "type": "default_task"}, 1.0)
    ]
    # Cluster-wide gauges from the instance that joined first only.
    assert "workerpool_tasks" in families["alpha"]
    assert "workerpool_queue_depth" in families["alpha"]
    assert "workerpool_tasks" not in families["beta"]
    assert "workerpool_queue_depth" not in families["beta"]
    # Each instance's claims: how long they took and how many tasks they took.
    claimed = {
        name: sum(
            s.value for s in found["workerpool_store_claim_rows"].samples if s.name.endswith("_sum")
        )
        for name, found in families.items()
    }
    assert sum(claimed.values()) == 1.0, claimed
    for found in families.values():
        counts = [
            s.value
            for s in found["workerpool_store_claim_seconds"].samples
            if s.name.endswith("_count")
        ]
        assert counts and counts[0] >= 1


async def test_logs_of_a_task_another_instance_runs(pg_url: str, pg_schema: str) -> None:
    release = anyio.Event()

    async def chatty(ctx: TaskContext, payload: dict[str, Any]) -> None:
        ctx.log("first")
        await release.wait()
        ctx.log("second")

    runner, _ = pg_engine(pg_url, pg_schema, handlers={"chatty": chatty})
    reader, _ = pg_engine(pg_url, pg_schema, handlers={"chatty": chatty})
    async with runner, reader:
        reader.pause()  # only the runner claims it
        task = await submit(runner, "chatty")
        await wait_task(runner, task.id, lambda t: t.logs and list(t.logs) == ["first"])
        await runner.journal.commit()  # another instance sees what is written down
        with anyio.fail_after(15):
            first = await read_logs(reader, task.id, 0, 10)
        assert reader.get(task.id) is None  # read from the store, not held here
        assert first.lines == ["first"] and first.next == 1 and not first.final
        release.set()
        seen = list(first.lines)
        since = first.next
        with anyio.fail_after(15):
            while True:
                page = await read_logs(reader, task.id[:8], since, 5)
                seen += page.lines
                since = page.next
                if page.final:
                    break
        assert seen == ["first", "second"] and page.status is TaskStatus.COMPLETED


async def test_bulk_delete_frees_the_unique_keys_of_deleted_tasks(
    pg_url: str, pg_schema: str
) -> None:
    engine, _ = pg_engine(pg_url, pg_schema)
    async with engine:
        spec = TaskSpec(type="default_task", unique_key="w", unique_for=3600.0)
        (first,) = await engine.submit_many([spec])
        await wait_final_pg(engine, first.id)
        await engine.journal.commit()
        with pytest.raises(Duplicate):  # within its window
            await engine.submit_many([spec])
        gone = await run_bulk(engine, "delete", BulkFilter(ids=[first.id]))
        assert gone.changed == 1
        (second,) = await engine.submit_many([spec])  # never answered with a deleted task
        assert second.id != first.id
