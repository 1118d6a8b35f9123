"""The add-a-schedule form: the rule is checked as you type and its next 5 fire times shown.

The rule field takes a cron expression (5 fields, or 6 with seconds) or a duration
(``30s``, ``5m``, ``1h``: ``every``). The form dismisses with a checked
:class:`ScheduleSpec` (the screen adds it through the engine's scheduler) or ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ...config import parse_duration
from ...core.schedule_rules import ScheduleSpec, check_schedule, next_times
from .typing_order import ORDERED_TYPING, OrderedTyping

PREVIEW_N = 5


def parse_rule(text: str) -> tuple[str | None, float | None]:
    """``(cron, every)`` from the rule field: a duration means ``every``."""
    text = text.strip()
    if not text:
        raise ValueError("give a cron expression (e.g. */5 * * * *) or a duration (e.g. 5m)")
    if len(text.split()) == 1:
        try:
            return None, parse_duration(text)
        except ValueError:
            pass
    return text, None


def build_spec(name: str, rule: str, type_name: str, payload: str, timezone: str) -> ScheduleSpec:
    """A checked spec from the form's fields; ``ValueError`` naming the field otherwise."""
    cron, every = parse_rule(rule)
    try:
        body = json.loads(payload) if payload.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload: not JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise ValueError("payload: must be a JSON object")
    spec = ScheduleSpec(
        name=name.strip(),
        type=type_name.strip(),
        cron=cron,
        every=every,
        timezone=timezone.strip() or "UTC",
        payload=body,
    )
    check_schedule(spec)
    return spec


def preview(rule: str, timezone: str, now: float) -> str:
    """The next fire times of ``rule`` after ``now``, or why it is not a rule."""
    try:
        cron, every = parse_rule(rule)
        spec = ScheduleSpec(
            name="preview", type="-", cron=cron, every=every, timezone=timezone.strip() or "UTC"
        )
        check_schedule(spec)
        times = next_times(spec, now, PREVIEW_N)
    except ValueError as exc:
        return f"✗ {exc}"
    return "Next runs (UTC): " + ", ".join(
        datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M:%S") for t in times
    )


class ScheduleForm(OrderedTyping, ModalScreen[ScheduleSpec | None]):
    """Name, rule (cron or duration), task type, payload, time zone."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", tooltip="Close without adding", id="schedule.cancel"),
        *ORDERED_TYPING,  # Tab, Backspace, Delete in the order typed
    ]

    def __init__(
        self, types: list[str], now: Callable[[], float], check_type: Callable[[str], bool]
    ) -> None:
        super().__init__()
        self._types = types
        self._now = now
        self._check_type = check_type

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="schedule-dialog", classes="dialog"):
            yield Label("Add a schedule", classes="dialog-title")
            yield Label("Name", classes="field-label")
            yield Input(id="schedule-name", placeholder="nightly")
            yield Label("Cron expression or every (duration)", classes="field-label")
            yield Input(id="schedule-rule", placeholder="*/5 * * * *  or  5m")
            yield Static(preview("", "UTC", self._now()), id="schedule-preview")
            yield Label("Task type", classes="field-label")
            yield Input(self._types[0] if self._types else "", id="schedule-type")
            yield Label("Payload (JSON object)", classes="field-label")
            yield Input("{}", id="schedule-payload")
            yield Label("Time zone", classes="field-label")
            yield Input("UTC", id="schedule-tz")
            yield Label("", id="schedule-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Add", id="schedule-ok", variant="primary")
                yield Button("Cancel", id="schedule-cancel")

    def on_mount(self) -> None:
        self.query_one("#schedule-name", Input).focus()

    def _value(self, wid: str) -> str:
        return self.query_one(f"#schedule-{wid}", Input).value

    @on(Input.Changed, "#schedule-rule, #schedule-tz")
    def _rule_changed(self) -> None:
        self.query_one("#schedule-preview", Static).update(
            preview(self._value("rule"), self._value("tz"), self._now())
        )

    def _validate(self) -> ScheduleSpec | None:
        error = ""
        spec = None
        try:
            spec = build_spec(
                self._value("name"),
                self._value("rule"),
                self._value("type"),
                self._value("payload"),
                self._value("tz"),
            )
            if not self._check_type(spec.type):
                error = f"type: unknown task type {spec.type!r}"
        except ValueError as exc:
            error = str(exc)
        self.query_one("#schedule-error", Label).update(error)
        return None if error else spec

    @on(Input.Submitted)
    @on(Button.Pressed, "#schedule-ok")
    def _submit(self) -> None:
        spec = self._validate()
        if spec is not None:
            self.dismiss(spec)

    @on(Button.Pressed, "#schedule-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
