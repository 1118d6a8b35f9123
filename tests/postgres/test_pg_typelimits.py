"""Per-type gates over the cluster store (issue #13): a capped type does not starve the
others, and what an instance held is given back to the cluster when it stops."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from enginekit import submit, wait_for
from pgkit import pg_engine, rows, wait_final_pg

from workerpool_tui.core import TaskStatus
from workerpool_tui.core.handlers import TaskContext

pytestmark = pytest.mark.anyio


async def test_a_capped_type_waits_without_starving_the_others_and_is_given_back(
    pg_url: str, pg_schema: str
) -> None:
    release = anyio.Event()
    most = 0
    running = 0

    async def slow(ctx: TaskContext, payload: dict[str, Any]) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1

    async def quick(ctx: TaskContext, payload: dict[str, Any]) -> str:
        return "done"

    engine, _ = pg_engine(
        pg_url,
        pg_schema,
        {"slow": slow, "quick": quick},
        task={"types": {"slow": {"concurrency": 1}}},
        worker={"min_workers": 3, "max_workers": 3},
    )
    async with engine:
        slows = [await submit(engine, "slow", priority=5) for _ in range(4)]
        quicks = [await submit(engine, "quick") for _ in range(4)]
        for task in quicks:
            assert (await wait_final_pg(engine, task.id)).status is TaskStatus.COMPLETED
        await wait_for(lambda: engine.gates.limits["slow"].held_count == 3, "3 held")
        assert most == 1
        await engine.shutdown(grace_s=0.0)  # the running one is stopped, the held given back
    held_back = rows(pg_url, pg_schema, "type = 'slow' AND status = 'pending'")
    finished = rows(pg_url, pg_schema, "type = 'slow' AND status <> 'pending'")
    assert len(held_back) + len(finished) == len(slows)
    assert all(row[4] is None for row in held_back)  # no owner: any instance may run them
    assert len(held_back) >= 3, (held_back, finished)
