"""Snapshot baselines of the dashboard, built from a fixed, motionless factory."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from .factory import snapshot_app

SIZE = (160, 48)


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
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("right", "backspace", "backspace", *'{"sleep": -1')

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=bad_payload)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SIZE, press=["question_mark"])


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
