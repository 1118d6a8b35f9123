"""Issue 14 across the cluster: a bulk action on one instance reaches the others as ONE
summary (a ``BulkEvent`` on their bus), not as an event per task; a single task's change
still reaches them as a task event."""

from __future__ import annotations

import anyio
import pytest
from pgkit import pg_engine

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.core.bulk import BulkFilter, run_bulk
from workerpool_tui.core.bus import (
    RESYNC,
    BulkEvent,
    Delivery,
    EventBus,
    Subscription,
    TaskEvent,
)
from workerpool_tui.core.models import EventKind
from workerpool_tui.store.postgres.listener import Listener

pytestmark = pytest.mark.anyio

N = 2_000
DEADLINE_S = 30.0
AFTER_S = 1.5
"""How long instance B is watched after the summary arrived: the change feed publishes
what it heard within ``FEED_GATHER_S`` (0.1 s) and one query, and the per-task
notifications of the bulk's statements, had there been any, were committed before it."""


async def _collect_until(sub: Subscription, done: object, seen: list[Delivery]) -> None:
    """Gather deliveries into ``seen`` until one satisfies ``done`` (a deadline)."""
    with anyio.fail_after(DEADLINE_S):
        while True:
            batch = await sub.get_batch()
            seen.extend(batch)
            if any(done(d) for d in batch):  # type: ignore[operator]
                return


async def test_a_bulk_cancel_reaches_another_instance_as_one_summary(
    pg_url: str, pg_schema: str
) -> None:
    task = {"queue_capacity": 10 * N, "max_tracked_tasks": 20 * N}
    a, _ = pg_engine(pg_url, pg_schema, task=task)
    b, _ = pg_engine(pg_url, pg_schema, task=task)
    async with a, b:
        a.pause()
        b.pause()  # nobody claims: every task stays pending in the table
        async with b.bus.subscribe(maxsize=10 * N, name="instance-b") as sub:
            seen: list[Delivery] = []
            # B follows the cluster's changes once its listener LISTENs (it resyncs then).
            await _collect_until(sub, lambda d: d is RESYNC, seen)
            tasks = await a.submit_many([TaskSpec(type="default_task") for _ in range(N + 1)])
            ids = {t.id for t in tasks}
            created: set[str] = set()

            def all_created(d: Delivery) -> bool:
                if isinstance(d, TaskEvent) and d.task.id in ids:
                    created.add(d.task.id)
                return len(created) == len(ids)

            await _collect_until(sub, all_created, seen)  # submissions are announced

            # A single cancel still reaches B as that task's event.
            single = tasks[0]
            await a.cancel(single.id, wait_s=0)
            seen.clear()
            await _collect_until(
                sub,
                lambda d: (
                    isinstance(d, TaskEvent)
                    and d.task.id == single.id
                    and d.kind is EventKind.CANCELLED
                ),
                seen,
            )

            # A bulk cancel of the rest: one summary, no task events.
            result = await run_bulk(a, "cancel", BulkFilter(status=[TaskStatus.PENDING]))
            assert (result.matched, result.changed, result.skipped) == (N, N, {})
            seen = await _after_bulk(sub)
            assert [d for d in seen if isinstance(d, BulkEvent)] == [BulkEvent("cancel", N, N, {})]
            assert [d for d in seen if isinstance(d, TaskEvent) and d.task.id in ids] == []
            assert RESYNC not in seen
            page, total = await b.list_tasks(status=frozenset({TaskStatus.CANCELLED}), limit=1)
            assert total == N + 1 and page  # B reads them cancelled

            # A bulk retry: its new tasks (written by A's journal) are not announced either.
            result = await run_bulk(a, "retry", BulkFilter(status=[TaskStatus.CANCELLED]))
            assert (result.matched, result.changed) == (N + 1, N + 1)
            seen = await _after_bulk(sub)
            assert [d for d in seen if isinstance(d, BulkEvent)] == [
                BulkEvent("retry", N + 1, N + 1, {})
            ]
            assert [d for d in seen if isinstance(d, TaskEvent)] == []
            page, total = await b.list_tasks(status=frozenset({TaskStatus.PENDING}), limit=1)
            assert total == N + 1 and page[0].retry_of in ids

            # A bulk delete: one summary.
            result = await run_bulk(a, "delete", BulkFilter(status=[TaskStatus.CANCELLED]))
            assert (result.matched, result.changed) == (N + 1, N + 1)
            seen = await _after_bulk(sub)
            assert [d for d in seen if isinstance(d, BulkEvent)] == [
                BulkEvent("delete", N + 1, N + 1, {})
            ]
            assert [d for d in seen if isinstance(d, TaskEvent)] == []


async def _after_bulk(sub: Subscription) -> list[Delivery]:
    """What B's bus delivers until the summary arrives, and for :data:`AFTER_S` after."""
    seen: list[Delivery] = []
    await _collect_until(sub, lambda d: isinstance(d, BulkEvent), seen)
    with anyio.move_on_after(AFTER_S):
        while True:
            seen.extend(await sub.get_batch())
    return seen


async def test_the_listener_publishes_a_summary_and_resyncs_on_a_garbled_one() -> None:
    bus = EventBus()
    ear = Listener(
        "postgresql://127.0.0.1/none",
        None,  # type: ignore[arg-type]  # (no query is made)
        "wp",
        1,
        bus,
        name="b",
        on_wake=lambda _: None,
        on_cancel=lambda _: None,
        on_reconnect=lambda: None,
    )
    async with bus.subscribe(name="b") as sub:
        ear._bulk('{"action": "delete", "matched": 3, "changed": 2, "skipped": {"gone": 1}}')
        assert sub.get_nowait() == [BulkEvent("delete", 3, 2, {"gone": 1})]
        ear._bulk('{"action": "delete"')
        assert sub.get_nowait() == [RESYNC]
