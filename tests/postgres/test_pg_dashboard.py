"""Issue #11's line: "a dashboard (Pilot) on a third instance shows both instances and
their tasks" — two real ``serve`` processes and a dashboard over a third engine, all on
one PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cluster_procs import STEADY, cluster, start, stop
from pgkit import pg_engine
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from workerpool_tui.server.instances import worker_list
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.screens.instances import InstancesScreen
from workerpool_tui.tui.screens.workers import WorkersScreen
from workerpool_tui.tui.widgets.task_rows import INSTANCE_WIDTH
from workerpool_tui.tui.widgets.task_table import TaskTable

pytestmark = pytest.mark.anyio
TASKS = 40


async def until(pilot: Pilot[Any], condition: Callable[[], bool], limit_s: float = 20) -> None:
    with anyio.fail_after(limit_s):
        while not condition():
            await pilot.pause(0.05)


async def finished_everywhere(client: httpx.AsyncClient, ids: list[str]) -> dict[str, str]:
    """Wait until every task completed; ``{id: instance that ran it}``."""
    with anyio.fail_after(30):
        while True:
            listing = (await client.get("/api/v1/tasks", params={"limit": 1000})).json()
            tasks = {t["id"]: t for t in listing["tasks"] if t["id"] in ids}
            if len(tasks) == len(ids) and all(t["status"] == "completed" for t in tasks.values()):
                return {i: t["instance"] for i, t in tasks.items()}
            await anyio.sleep(0.05)


def instance_cell(table: TaskTable, task_id: str) -> str:
    """The instance at the head of a row's message column (cluster mode)."""
    return table.get_row(task_id)[-1][:INSTANCE_WIDTH].strip()


async def test_a_dashboard_on_a_third_instance_shows_both_instances_and_their_tasks(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    async with cluster() as (tg, instances):
        # Long leases: this test is about what the dashboard shows, not about recovery; a
        # 1.5 s lease (cluster_procs' default, for the recovery tests) let a loaded
        # machine's late heartbeat mark an instance dead before the Instances screen read.
        for name in ("alpha", "beta"):
            instances.append(await start(tmp_path, pg_url, pg_schema, name, tg, **STEADY))
        a, b = instances
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=10) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=10) as cb,
        ):
            batch = {
                "tasks": [
                    {"type": "default_task", "payload": {"n": i, "sleep": 0.05}}
                    for i in range(TASKS)
                ]
            }
            r = await ca.post("/api/v1/tasks/batch", json=batch)
            assert r.status_code == 201, r.text
            ids = [t["id"] for t in r.json()["tasks"]]
            ran_on = await finished_everywhere(cb, ids)
            assert set(ran_on.values()) == {"alpha", "beta"}, ran_on  # both took work

            # A long lease: a test machine's busy moment must not make the dashboard's
            # own instance look unresponsive.
            engine, _ = pg_engine(
                pg_url,
                pg_schema,
                store={"instance_name": "dash", "heartbeat": "0.5s", "lease": "10s"},
            )
            async with engine:
                engine.pause()  # the dashboard's instance takes no work: the tasks are theirs
                app = DashboardApp(engine)
                async with app.run_test(size=(160, 48)) as pilot:
                    table = app.query_one(TaskTable)
                    assert table.cluster
                    # The cluster's tasks, each with the instance that ran it.
                    await until(pilot, lambda: set(table.shown_ids) >= set(ids))
                    assert {i: instance_cell(table, i) for i in ids} == ran_on
                    assert "instance dash" in app.sub_title
                    # The title counts the cluster's tasks (its stats), not the view's.
                    await until(pilot, lambda: f"of {TASKS:,}" in str(table.border_title))

                    # Live: a task submitted through B reaches the table with its instance.
                    r = await cb.post(
                        "/api/v1/tasks", json={"type": "default_task", "payload": {"late": 1}}
                    )
                    late = r.json()["id"]
                    await until(
                        pilot,
                        lambda: (
                            late in table.shown_ids
                            and table.get_row(late)[2] == "completed"
                            and instance_cell(table, late) in {"alpha", "beta"}
                        ),
                    )

                    app.open_task(ids[0])
                    await until(pilot, lambda: isinstance(app.screen, DetailScreen))
                    detail = app.screen

                    def detail_names_the_instance() -> bool:
                        try:
                            summary = detail.query_one("#detail-summary", Static)
                        except NoMatches:  # not composed yet
                            return False
                        return f"instance {ran_on[ids[0]]}" in str(summary.content)

                    await until(pilot, detail_names_the_instance)
                    await pilot.press("escape")

                    await pilot.press("I")
                    await until(pilot, lambda: isinstance(app.screen, InstancesScreen))
                    screen = app.screen
                    assert isinstance(screen, InstancesScreen)
                    await until(pilot, lambda: screen.polls >= 1)
                    assert screen.cluster
                    shown = {i.name: i for i in screen.instances}
                    assert set(shown) == {"alpha", "beta", "dash"}
                    assert shown["dash"].this and not shown["alpha"].this
                    assert all(i.state == "running" for i in shown.values()), shown
                    assert shown["alpha"].done + shown["beta"].done >= TASKS
                    assert screen.query_one(DataTable).row_count == 3
                    assert "Cluster: 3 instances, 3 running" in str(
                        screen.query_one("#instances-summary", Static).content
                    )

                    # Workers are the instance's own: the screen and the API say whose.
                    await pilot.press("W")
                    await until(pilot, lambda: isinstance(app.screen, WorkersScreen))
                    workers = app.screen
                    assert isinstance(workers, WorkersScreen)
                    assert "of instance dash" in str(
                        workers.query_one("#workers-summary", Static).content
                    )
                    answer = worker_list(engine)
                    assert answer.instance == "dash" and len(answer.workers) == len(workers.rows)
        assert await stop(a) == 0 and await stop(b) == 0
