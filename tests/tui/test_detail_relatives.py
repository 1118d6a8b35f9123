"""The detail view lists parents and children with their statuses; Enter opens one."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from workerpool_tui.core import TaskSpec, TaskStatus
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.widgets.task_table import TaskTable

from .harness import live_app, status_of, until

pytestmark = pytest.mark.anyio


def _lines(screen: object) -> list[str]:
    assert isinstance(screen, DetailScreen)
    family = screen.query_one("#detail-family", OptionList)
    return [str(family.get_option_at_index(i).prompt) for i in range(family.option_count)]


async def test_jump_from_a_child_to_its_parent_and_back() -> None:
    async with live_app() as (engine, app, pilot):
        parent, child = await engine.submit_many(
            [
                TaskSpec(type="default_task"),
                TaskSpec(type="default_task", depends_on=("$0",), run_at=engine.clock.now() + 600),
            ]
        )
        await until(pilot, lambda: status_of(engine, parent.id) is TaskStatus.COMPLETED)
        table = app.query_one(TaskTable)
        await until(pilot, lambda: table.highlighted_id == child.id)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(
            pilot, lambda: _lines(app.screen) == [f"parent  {parent.id}  default_task  completed"]
        )
        assert isinstance(app.focused, OptionList)  # Enter opens the highlighted one
        await pilot.press("enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, DetailScreen) and app.screen.task_id == parent.id,
        )
        await until(
            pilot, lambda: _lines(app.screen) == [f"child   {child.id}  default_task  pending"]
        )
        # the child's status moves on in the parent's list
        await engine.run_now(child.id)
        await until(pilot, lambda: _lines(app.screen)[0].endswith("completed"))
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.task_id == child.id)  # type: ignore[attr-defined]
        await pilot.press("escape", "escape", "escape")  # back through child, parent, child
        assert not isinstance(app.screen, DetailScreen)


async def test_a_task_without_relatives_shows_no_list() -> None:
    async with live_app() as (engine, app, pilot):
        (task,) = await engine.submit_many([TaskSpec(type="default_task")])
        app.open_task(task.id)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.pause()
        family = app.screen.query_one("#detail-family", OptionList)
        assert not family.display and family.option_count == 0


def test_the_registry_indexes_children_and_forgets_them() -> None:
    from workerpool_tui.core import Task
    from workerpool_tui.core.registry import Registry

    reg = Registry(max_tracked=10)
    p = Task(id="p", type="t", payload={}, created_at=0.0)
    kids = [
        Task(id=f"k{i}", type="t", payload={}, created_at=0.0, depends_on=("p",)) for i in range(3)
    ]
    reg.add_pending([p, *kids])
    assert [k.id for k in reg.children_of("p")] == ["k0", "k1", "k2"]
    found, total = reg.page(parent="p", limit=2)
    assert ([t.id for t in found], total) == (["k2", "k1"], 3)
    reg.discard(kids[1])
    assert [k.id for k in reg.children_of("p")] == ["k0", "k2"]
    reg.discard(kids[0])
    reg.discard(kids[2])
    assert reg.children_of("p") == [] and reg._children == {}


def test_evicted_and_cleaned_children_leave_the_index() -> None:
    from workerpool_tui.core import Task
    from workerpool_tui.core.registry import Registry

    reg = Registry(max_tracked=3)
    done = TaskStatus.COMPLETED
    p = Task(id="p", type="t", payload={}, created_at=0.0)
    reg.add(p)
    for i in range(4):  # final children, finished in order: the oldest are evicted first
        kid = Task(id=f"k{i}", type="t", payload={}, created_at=0.0, depends_on=("p",), status=done)
        kid.finished_at = float(i)
        reg.add(kid)
    reg.evict_overflow()
    assert [k.id for k in reg.children_of("p")] == ["k2", "k3"]
    reg.cleanup(now=100.0, keep_done_s=1.0, keep_failed_s=1.0)
    assert reg.children_of("p") == [] and reg._children == {}
