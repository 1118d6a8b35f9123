"""The submit form: type, payload JSON checked as you type, priority, timeout, retries, count.

Nothing is sent until every field is valid; each error is shown under its field. The form
only describes the submission (a :class:`SubmitRequest`); the app sends it. Priority,
timeout and max retries start empty, showing the chosen type's defaults (``[task.types.
NAME]``, else ``[task]``) in grey; left empty, the engine applies those defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from ...config import parse_duration
from ...core import TaskSpec
from ..view_model import SubmitRequest, TypeInfo
from ..widgets.cells import duration
from ..widgets.footer import Footer
from .typing_order import ORDERED_TYPING, OrderedTyping

PayloadCheck = Callable[[str, dict[str, Any]], "str | None"]


class SubmitScreen(OrderedTyping, ModalScreen[SubmitRequest | None]):
    """A modal form; dismisses with the request, or ``None`` when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: Esc closes the form even from the payload editor, which keeps Esc.
        Binding(
            "escape",
            "cancel",
            "Close",
            tooltip="Close without submitting",
            id="form.cancel",
            priority=True,
        ),
        *ORDERED_TYPING,  # Tab, Backspace, Delete in the order typed
        Binding(
            "ctrl+s",
            "submit",
            "Submit",
            tooltip="Submit when valid",
            id="form.submit",
            priority=True,
        ),
    ]

    def __init__(
        self,
        types: list[TypeInfo],
        check_payload: PayloadCheck,
        *,
        max_count: int,
        type_name: str | None = None,
        payload: str = "{}",
    ) -> None:
        super().__init__()
        self._types = {t.name: t for t in types}
        self._check_payload = check_payload
        self._max_count = max_count
        self._type_name = type_name if type_name in self._types else next(iter(self._types), None)
        self._payload = payload
        self._payload_set = payload
        """The payload text the form last put in the editor (not typed by the user)."""
        self.request: SubmitRequest | None = None
        """The submission as the fields stand, when they are all valid."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="submit-dialog", classes="dialog"):
            yield Label("Submit tasks", classes="dialog-title")
            yield Label("Task type", classes="field-label")
            yield Select(
                [(name, name) for name in self._types],
                value=self._type_name if self._type_name is not None else Select.BLANK,
                allow_blank=False,
                id="submit-type",
            )
            yield Static(id="submit-type-help", classes="hint")
            yield Label("Payload (a JSON object)", classes="field-label")
            yield TextArea(
                self._payload, id="submit-payload", soft_wrap=True, show_line_numbers=False
            )
            yield Label("", id="submit-payload-error", classes="error")
            with Horizontal(classes="fields"):
                with Vertical():
                    yield Label("Priority", classes="field-label")
                    yield Input("", id="submit-priority", type="integer")
                with Vertical():
                    yield Label("Timeout", classes="field-label")
                    yield Input("", id="submit-timeout")
                with Vertical():
                    yield Label("Max retries", classes="field-label")
                    yield Input("", id="submit-retries", type="integer")
                with Vertical():
                    yield Label("Count", classes="field-label")
                    yield Input("1", id="submit-count", type="integer")
            yield Label("", id="submit-fields-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Submit", id="submit-ok", variant="primary")
                yield Button("Cancel", id="submit-cancel")
        yield Footer()

    def on_mount(self) -> None:
        # At once (``focus()`` would wait its turn behind keys already typed).
        self.set_focus(self.query_one("#submit-type", Select))
        self._validate()

    @on(Select.Changed, "#submit-type")
    def _type_changed(self, event: Select.Changed) -> None:
        """An untouched payload becomes the new type's defaults; a typed one is kept."""
        if event.value == self._type_name:  # the value the form opened with
            return
        self._type_name = event.value if isinstance(event.value, str) else None
        editor = self.query_one("#submit-payload", TextArea)
        info = self._types.get(self._type_name) if self._type_name is not None else None
        if info is None or editor.text != self._payload_set:
            return
        defaults = _schema_defaults(info.payload_schema) if info.payload_schema else {}
        text = json.dumps(defaults)
        self._payload_set = text
        editor.text = text

    # ------------------------------------------------------------------ validation
    @on(TextArea.Changed)
    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._validate()

    def _validate(self) -> SubmitRequest | None:
        type_value = self.query_one("#submit-type", Select).value
        type_name = type_value if isinstance(type_value, str) else None
        info = self._types.get(type_name) if type_name is not None else None
        help_ = self.query_one("#submit-type-help", Static)
        if info is None:
            help_.update("choose a task type")
        else:
            fields = ""
            if info.payload_schema is not None:
                props = _schema_props(info.payload_schema)
                fields = f"  fields: {props}" if props else ""
            limits = f"  ({info.limits})" if info.limits else ""
            defaults = (
                f"\ndefaults: priority {_default(info.priority)}"
                f" · timeout {_default(info.timeout_s, duration)}"
                f" · max retries {_default(info.max_retries)}"
            )
            help_.update(f"{info.description}{fields}{limits}{defaults}")
            self._show_defaults(info)

        payload_error = ""
        payload: dict[str, Any] | None = None
        text = self.query_one("#submit-payload", TextArea).text
        try:
            decoded = msgspec.json.decode(text.strip() or "{}")
        except msgspec.DecodeError as exc:
            payload_error = f"invalid JSON: {exc}"
        else:
            if not isinstance(decoded, dict):
                payload_error = f"the payload must be a JSON object, not {_json_kind(decoded)}"
            elif type_name is not None:
                payload = decoded
                problem = self._check_payload(type_name, decoded)
                if problem is not None:
                    payload_error = problem
                    payload = None
        self.query_one("#submit-payload-error", Label).update(payload_error)

        errors: list[str] = []
        # An empty field is left out of the spec: the engine applies the type's default.
        priority = _int(self.query_one("#submit-priority", Input).value, "priority", errors)
        timeout_text = self.query_one("#submit-timeout", Input).value.strip()
        timeout: float | None = None
        if timeout_text:
            try:
                timeout = parse_duration(timeout_text)
                if timeout <= 0:
                    errors.append("timeout must be more than 0")
            except ValueError as exc:
                errors.append(f"timeout: {exc}")
        retries = _int(self.query_one("#submit-retries", Input).value, "max retries", errors)
        if retries is not None and retries < 0:
            errors.append("max retries must not be negative")
        count = _int(self.query_one("#submit-count", Input).value, "count", errors, default=1)
        if count is not None and not 1 <= count <= self._max_count:
            errors.append(f"count must be between 1 and {self._max_count} (room in the queue)")
        self.query_one("#submit-fields-error", Label).update("; ".join(errors))

        ok = payload is not None and not payload_error and not errors and type_name is not None
        self.query_one("#submit-ok", Button).disabled = not ok
        if not ok or type_name is None or payload is None or count is None:
            self.request = None
            return None
        self.request = SubmitRequest(
            spec=TaskSpec(
                type=type_name,
                payload=payload,
                priority=priority,
                timeout_s=timeout,
                max_retries=retries,
            ),
            count=count,
        )
        return self.request

    def _show_defaults(self, info: TypeInfo) -> None:
        """The type's defaults, greyed in the fields the user has not typed in."""
        for field, text in (
            ("#submit-priority", _default(info.priority)),
            ("#submit-timeout", _default(info.timeout_s, duration)),
            ("#submit-retries", _default(info.max_retries)),
        ):
            box = self.query_one(field, Input)
            if box.placeholder != text:
                box.placeholder = text

    # ------------------------------------------------------------------ actions
    @on(Button.Pressed, "#submit-ok")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        request = self._validate()
        if request is None:
            self.notify("Fix the fields marked in red first.", severity="warning")
            return
        self.dismiss(request)

    @on(Button.Pressed, "#submit-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _int(text: str, name: str, errors: list[str], default: int | None = None) -> int | None:
    text = text.strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        errors.append(f"{name} must be a whole number")
        return None


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _schema_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """The fields of a msgspec JSON Schema that have a default, with it."""
    return {
        name: prop["default"]
        for name, prop in _schema_body(schema).get("properties", {}).items()
        if "default" in prop
    }


def _schema_body(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    ref = schema.get("$ref", "")
    body: dict[str, Any] = defs.get(ref.rsplit("/", 1)[-1], schema) if ref else schema
    return body


def _schema_props(schema: dict[str, Any]) -> str:
    """``duration: number = 30.0, steps: integer = 100`` from a msgspec JSON Schema."""
    body = _schema_body(schema)
    parts = []
    for name, prop in body.get("properties", {}).items():
        kind = prop.get("type", "any")
        default = f" = {prop['default']}" if "default" in prop else ""
        parts.append(f"{name}: {kind}{default}")
    return ", ".join(parts)


def _default(value: float | None, fmt: Callable[[float], str] = str) -> str:
    """A default as the form shows it; ``None``: the server's (attached, not stated)."""
    return "server's" if value is None else fmt(value)
