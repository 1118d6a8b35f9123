"""Save the README's screenshots: the app itself writes SVGs (``App.save_screenshot``).

Runs the dashboard headless over a real engine: a burst of quick tasks with a few long
ones, a scaling decision, then the main screen under load, a task's detail view, the
submit form, a pipeline step's detail (its parents and children) and the Schedules screen.

    .venv/bin/python bench/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import anyio
from textual.widgets import Input, Select, TextArea

from workerpool_tui.config import load_config
from workerpool_tui.core import Engine, TaskSpec
from workerpool_tui.core.schedules import ScheduleSpec
from workerpool_tui.tui.app import DashboardApp
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.screens.schedules import SchedulesScreen
from workerpool_tui.tui.screens.submit import SubmitScreen

SIZE = (160, 48)


async def main(out: Path) -> None:

    cfg = load_config(
        None,
        overrides={
            "store": {"path": ""},
            "server": {"enabled": False},
            "worker": {"min_workers": 8, "max_workers": 64, "scale_check_interval": "1s"},
            "task": {"queue_capacity": 20_000},
        },
    )
    async with Engine(cfg) as engine:
        app = DashboardApp(engine)
        async with app.run_test(size=SIZE) as pilot:
            long = TaskSpec(type="long_running_task", payload={"duration": 20, "steps": 40})
            await engine.submit_many([long] * 6)
            await engine.submit_many([TaskSpec(type="default_task", payload={"fail": True})] * 2)
            for second in range(6):
                quick = TaskSpec(type="default_task", payload={"sleep": 0.01, "n": second})
                await engine.submit_many([quick] * 2_500)
                await engine.submit_many([TaskSpec(type="example_task")] * 10)
                await pilot.pause(1.0)
            app.save_screenshot("main-under-load.svg", str(out))

            running = next(t for t in engine.registry.active() if t.type == "long_running_task")
            app.open_task(running.id)
            with anyio.fail_after(10):
                while not isinstance(app.screen, DetailScreen):
                    await pilot.pause(0.05)
            await pilot.pause(0.5)
            app.save_screenshot("detail.svg", str(out))
            await pilot.press("escape")

            await pilot.press("n")
            with anyio.fail_after(10):
                while not isinstance(app.screen, SubmitScreen):
                    await pilot.pause(0.05)
            await pilot.pause(0.2)
            form = app.screen
            form.query_one("#submit-type", Select).value = "long_running_task"
            form.query_one("#submit-payload", TextArea).text = '{"duration": 5, "steps": "ten"}'
            form.query_one("#submit-count", Input).value = "100"
            await pilot.pause(0.5)
            app.save_screenshot("submit-form.svg", str(out))
            await pilot.press("escape")

            # A pipeline in one batch: fetch -> two transforms -> a report waiting for both.
            step = TaskSpec(type="long_running_task", payload={"duration": 30, "steps": 30})
            _fetch, transform, _other, _report = await engine.submit_many(
                [
                    step,
                    TaskSpec(type="default_task", depends_on=("$0",)),
                    TaskSpec(type="default_task", depends_on=("$0",)),
                    TaskSpec(type="example_task", depends_on=("$1", "$2")),
                ]
            )
            app.open_task(transform.id)
            with anyio.fail_after(10):
                while not isinstance(app.screen, DetailScreen):
                    await pilot.pause(0.05)
            await pilot.pause(0.5)
            app.save_screenshot("detail-dependencies.svg", str(out))
            await pilot.press("escape")

            for spec in (
                ScheduleSpec(name="nightly-report", cron="0 3 * * *", type="example_task"),
                ScheduleSpec(name="heartbeat", every=30.0, type="default_task"),
                ScheduleSpec(name="cleanup", cron="*/15 * * * *", type="default_task", paused=True),
            ):
                await engine.scheduler.add(spec)
            await pilot.press("S")
            with anyio.fail_after(10):
                while not isinstance(app.screen, SchedulesScreen):
                    await pilot.pause(0.05)
            await pilot.pause(1.5)
            app.save_screenshot("schedules.svg", str(out))
            app.exit(0)
    names = ("main-under-load.svg", "detail.svg", "submit-form.svg")
    for name in (*names, "detail-dependencies.svg", "schedules.svg"):
        print(out / name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="screenshots")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(out))
