"""Task detail: payload, result or error with traceback, its log lines, timeline, progress,
and its parents and children (status coloured; Enter on one opens its detail)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

import msgspec
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from ...core import Task, TaskStatus, TaskView, task_view
from ..relatives import Relative
from ..widgets.cells import duration
from ..widgets.footer import Footer

STATUS_STYLE = {
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
    "pending": "dim",
}

RelativesFn = Callable[[Task], tuple[list[Relative], int]]


class DetailScreen(Screen[None]):
    """One task, kept live by the app while it is open."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "app.pop_screen", "Back", tooltip="Back to the task list", id="detail.back"
        ),
        Binding("c", "cancel_task", "Cancel task", tooltip="Cancel this task", id="detail.cancel"),
        Binding(
            "r",
            "submit_again",
            "Submit again",
            tooltip="Submit a new task with the same type, payload and options",
            id="detail.retry",
        ),
        # Priority: the list of parents and children has Enter too; one binding (and one
        # [keymap] id) whatever has the focus.
        Binding(
            "enter",
            "open_relative",
            "Open parent/child",
            tooltip="Open the highlighted parent or child",
            id="detail.open",
            priority=True,
        ),
    ]

    class CancelTask(Message):
        """The user asked to cancel the task shown."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    class SubmitAgain(Message):
        """The user asked for a new task like the one shown."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    class OpenTask(Message):
        """The user chose a parent or a child: show that task's detail."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    def __init__(self, task_id: str, relatives: RelativesFn | None = None) -> None:
        super().__init__()
        self.task_id = task_id
        self._relatives_fn = relatives
        self._relatives: tuple[list[Relative], int] | None = None
        self._view: TaskView | None = None
        self._ready = False
        self._pending: tuple[Task | None, float] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-summary")
            yield ProgressBar(total=100, show_eta=False, id="detail-progress")
            yield Static(id="detail-message")
            yield OptionList(id="detail-family", classes="section")
            yield Static(id="detail-timeline", classes="section")
            yield Static(id="detail-payload", classes="section")
            yield Static(id="detail-outcome", classes="section")
            yield Static(id="detail-logs", classes="section")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-payload").border_title = "Payload"
        self.query_one("#detail-timeline").border_title = "Timeline"
        self.query_one("#detail-logs").border_title = "Task log"
        family = self.query_one("#detail-family", OptionList)
        family.border_title = "Parents and children · Enter: open"
        family.display = False
        self.title = f"Task {self.task_id}"
        self._ready = True
        if self._pending is not None:
            self.show(*self._pending)
            self._pending = None

    def on_unmount(self) -> None:
        self._ready = False

    @property
    def drawable(self) -> bool:
        """Composed, and not being taken down (its widgets are all there)."""
        return self._ready and self.is_attached

    def show(self, task: Task | None, now: float) -> None:
        """Draw ``task`` as it is now (``None``: the task is no longer tracked)."""
        if not self._ready:
            self._pending = (task, now)
            return
        if not self.is_attached:  # closing: its widgets may be gone already
            return
        if task is None:
            self.query_one("#detail-summary", Static).update(
                Text(f"Task {self.task_id} is no longer tracked (cleaned up).", style="bold")
            )
            return
        view = task_view(task)
        old, self._view = self._view, view
        self._show_relatives(task)
        self.query_one("#detail-summary", Static).update(self._summary(view))
        bar = self.query_one("#detail-progress", ProgressBar)
        bar.update(progress=view.progress)
        self.query_one("#detail-message", Static).update(Text(view.message or "", style="italic"))
        self.query_one("#detail-timeline", Static).update(
            _timeline(view, now, task.created_at, task.started_at, task.finished_at)
        )
        if old is None or old.payload != view.payload:
            self.query_one("#detail-payload", Static).update(
                JSON(msgspec.json.encode(view.payload).decode())
            )
        if (
            old is None
            or old.status != view.status
            or old.result != view.result
            or old.error != view.error
        ):
            outcome = self.query_one("#detail-outcome", Static)
            outcome.border_title = "Error" if view.error is not None else "Result"
            outcome.update(_outcome(view))
        if old is None or old.logs != view.logs:
            self.query_one("#detail-logs", Static).update(
                Text("\n".join(view.logs)) if view.logs else Text("(no log lines)", style="dim")
            )

    @property
    def has_relatives(self) -> bool:
        """It lists parents or children (the app refreshes their statuses each second)."""
        return bool(self._relatives and self._relatives[0])

    def _show_relatives(self, task: Task) -> None:
        if self._relatives_fn is None:
            return
        found = self._relatives_fn(task)
        if found == self._relatives:
            return
        first = self._relatives is None
        self._relatives = found
        rows, more = found
        family = self.query_one("#detail-family", OptionList)
        highlighted = family.highlighted
        family.clear_options()
        family.add_options([Option(_relative_line(r), id=r.id) for r in rows])
        if more:
            family.add_option(Option(Text(f"… and {more:,} more children", style="dim")))
        family.display = bool(rows)
        if rows:
            family.highlighted = min(highlighted or 0, len(rows) - 1)
            if first:
                family.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_relative":
            return self.has_relatives
        return True

    def action_open_relative(self) -> None:
        family = self.query_one("#detail-family", OptionList)
        index = family.highlighted
        if index is None or not family.display:
            return
        task_id = family.get_option_at_index(index).id
        if task_id is not None:
            self.post_message(self.OpenTask(task_id))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.OpenTask(event.option.id))

    def _summary(self, v: TaskView) -> Text:
        out = Text()
        out.append(v.id, style="bold")
        out.append(f"  {v.type}  ")
        out.append(f" {v.status.value} ", style="bold reverse")
        out.append(f"  priority {v.priority}  attempt {v.attempts}/{v.max_retries + 1}")
        out.append(f"  timeout {duration(v.timeout_s)}")
        out.append(f"  worker {v.worker if v.worker is not None else '-'}")
        out.append(f"  instance {v.instance or '-'}")
        if v.retry_of:
            out.append(f"  retry of {v.retry_of}", style="dim")
        return out

    def action_cancel_task(self) -> None:
        self.post_message(self.CancelTask(self.task_id))

    def action_submit_again(self) -> None:
        self.post_message(self.SubmitAgain(self.task_id))


def _timeline(
    v: TaskView, now: float, created: float, started: float | None, finished: float | None
) -> Text:
    out = Text()
    out.append("created  ", style="bold")
    out.append(v.created_at or "-")
    out.append("\nstarted  ", style="bold")
    out.append(v.started_at or "-")
    out.append("\nfinished ", style="bold")
    out.append(v.finished_at or "-")
    if v.run_at is not None:  # due later (docs/scheduling.md)
        out.append("\nruns at  ", style="bold")
        out.append(f"{v.run_at}  (in {duration(max(0.0, _epoch(v.run_at) - now))})")
    if v.depends_on:
        out.append("\nparents  ", style="bold")
        out.append(", ".join(v.depends_on))
    if v.unique_key is not None:
        out.append("\nunique   ", style="bold")
        out.append(v.unique_key)
    wait_end = started if started is not None else (finished if finished is not None else now)
    out.append("\nqueue wait ", style="bold")
    out.append(duration(wait_end - created))
    if v.status is TaskStatus.PENDING and started is None:
        out.append(" (still waiting)", style="dim")
    if started is not None:
        out.append("   run time ", style="bold")
        out.append(duration((finished if finished is not None else now) - started))
        if finished is None:
            out.append(" (running)", style="dim")
    return out


def _relative_line(r: Relative) -> Text:
    out = Text()
    out.append(f"{r.relation:<7} ", style="bold")
    out.append(f"{r.id}  ")
    if r.status is None:
        out.append("(no longer tracked)", style="dim")
        return out
    out.append(f"{r.type or '-'}  ")
    out.append(r.status.value, style=STATUS_STYLE.get(r.status.value, ""))
    return out


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _outcome(v: TaskView) -> RenderableType:
    if v.error is not None:
        parts: list[RenderableType] = [Text(f"{v.error.type}: {v.error.message}", style="bold")]
        if v.error.traceback:
            parts.append(Text(v.error.traceback.rstrip(), style="dim"))
        return Group(*parts)
    if v.status is TaskStatus.COMPLETED:
        return JSON(msgspec.json.encode(v.result).decode())
    return Text(f"no result yet ({v.status.value})", style="dim")
