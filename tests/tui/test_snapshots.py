"""Snapshot baselines of the dashboard, built from a fixed, motionless factory."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from .factory import snapshot_app

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
