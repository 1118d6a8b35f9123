"""Snapshot baselines of the dashboard, built from a fixed, motionless factory."""

from __future__ import annotations

from typing import Any

import msgspec
from textual.pilot import Pilot
from textual.widgets import TextArea

from workerpool_tui.core.instance_view import InstanceInfo
from workerpool_tui.core.worker_view import WorkerInfo
from workerpool_tui.tui.screens.instances import InstancesScreen
from workerpool_tui.tui.screens.workers import WorkersScreen

from .factory import T0, snapshot_app

SIZE = (160, 48)
SMALL = (80, 24)
"""Every screen must be usable at 80x24: the same screens again, small."""


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SIZE)


def test_detail_view_of_failed_task(snap_compare: Any) -> None:
    async def open_failed(pilot: Pilot[Any]) -> None:
        pilot.app.open_task("0004beef00000000")  # type: ignore[attr-defined]

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=open_failed)


def test_detail_view_of_running_task(snap_compare: Any) -> None:
    # The fourth row is the running task at 75 %, with two log lines.
    assert snap_compare(snapshot_app(), terminal_size=SIZE, press=["down", "down", "down", "enter"])


def test_submit_form_with_error(snap_compare: Any) -> None:
    async def bad_payload(pilot: Pilot[Any]) -> None:
        await pilot.press("n", "tab")  # focus starts on the type; Tab: the payload
        await pilot.press("right", "backspace", "backspace", *'{"sleep": -1')
        # The editor's cursor blinks on a timer: a snapshot taken mid-blink differs.
        pilot.app.screen.query_one(TextArea).cursor_blink = False
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=bad_payload)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SIZE, press=["question_mark"])


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SMALL)


def test_main_screen_80x24_with_log(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SMALL, press=["l"])


def test_submit_form_80x24(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SMALL, press=["n"])


def test_submit_form_80x24_scrolled_to_the_buttons(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SMALL, press=["n", *["tab"] * 6])


def test_detail_view_80x24(snap_compare: Any) -> None:
    async def open_failed(pilot: Pilot[Any]) -> None:
        pilot.app.open_task("0004beef00000000")  # type: ignore[attr-defined]

    assert snap_compare(snapshot_app(), terminal_size=SMALL, run_before=open_failed)


def test_help_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SMALL, press=["question_mark"])


def test_bulk_menu_over_marked_rows(snap_compare: Any) -> None:
    async def mark_two_then_bulk(pilot: Pilot[Any]) -> None:
        from workerpool_tui.tui.screens.bulk import BulkScreen

        await pilot.press("space", "down", "down", "down", "space", "B")
        for _ in range(100):  # the menu opens once its dry runs answered
            if isinstance(pilot.app.screen, BulkScreen):
                break
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=mark_two_then_bulk)


# ---------------------------------------------------------------------- the new screens, 80x24
def _instances() -> list[InstanceInfo]:
    def one(name: str, pid: int, state: str, workers: int, busy: int, done: int, age: float) -> Any:
        return InstanceInfo(
            id=f"{pid:016x}",
            name=name,
            host=name.split(":")[0],
            pid=pid,
            version="0.1.0",
            state=state,
            workers=workers,
            busy=busy,
            min_workers=2,
            max_workers=8,
            paused=False,
            done=done,
            failed=0,
            started_at=T0 - 600,
            heartbeat_at=T0 - age,
            heartbeat_age_s=age,
            this=name == "dash",
        )

    return [
        one("alpha", 4101, "running", 8, 8, 12_345, 0.4),
        one("beta", 4102, "running", 4, 1, 9_876, 1.2),
        one("gamma", 4103, "dead", 0, 0, 310, 95.0),
        one("dash", 4104, "running", 2, 0, 0, 0.0),
    ]


def test_instances_screen_of_a_cluster(snap_compare: Any) -> None:
    async def fetch() -> tuple[list[InstanceInfo], bool]:
        return _instances(), True

    async def open_instances(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(InstancesScreen(fetch, refresh_s=0))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=SMALL, run_before=open_instances)


def test_instances_screen_outside_a_cluster(snap_compare: Any) -> None:
    async def fetch() -> tuple[list[InstanceInfo], bool]:
        return [msgspec.structs.replace(_instances()[3], name="laptop", host="laptop")], False

    async def open_instances(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(InstancesScreen(fetch, refresh_s=0))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=SMALL, run_before=open_instances)


def test_workers_screen(snap_compare: Any) -> None:
    workers = [
        WorkerInfo(1, "busy", "0006beef00000000", "long_running_task", T0 - 12, 41, 2),
        WorkerInfo(2, "idle", None, None, None, 38, 0),
        WorkerInfo(3, "busy", "0007beef00000000", "long_running_task", T0 - 3.5, 40, 1),
        WorkerInfo(4, "retiring", "0008beef00000000", "default_task", T0 - 0.25, 7, 0),
    ]

    async def open_workers(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(
            WorkersScreen(lambda: workers, lambda: T0, instance="alpha", refresh_s=0)
        )
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=SMALL, run_before=open_workers)
