"""The dashboard's keys: its bindings, the user keymap, help rows and palette commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual.binding import Binding, BindingType

from .commands import Command
from .screens.bulk import BulkScreen
from .screens.confirm import ConfirmScreen
from .screens.detail import DetailScreen
from .screens.help import HelpScreen, KeyRow
from .screens.instances import InstancesScreen
from .screens.resize import ResizeScreen
from .screens.schedule_form import ScheduleForm
from .screens.schedules import SchedulesScreen
from .screens.shutdown import ShutdownScreen
from .screens.submit import SubmitScreen
from .screens.workers import WorkersScreen
from .widgets.filter_tabs import FILTERS
from .widgets.task_table import TaskTable

if TYPE_CHECKING:
    from .app import DashboardApp


QUIT_HELP = "Let running tasks finish, then stop (q again: cancel them)"
"""What quitting does, in the same words for ``q``, help and the command palette."""


def _bind(
    key: str,
    action: str,
    description: str,
    binding_id: str,
    tooltip: str,
    *,
    show: bool = True,
    priority: bool = False,
) -> Binding:
    return Binding(
        key, action, description, show=show, tooltip=tooltip, id=binding_id, priority=priority
    )


BINDINGS: list[BindingType] = [
    # Priority: checked as the key arrives, so keys typed right after it wait for the form
    # (the action awaits its mount) instead of reaching the table first.
    _bind("n", "submit", "Submit", "submit", "Submit tasks (a form)", priority=True),
    _bind("c", "cancel_task", "Cancel", "cancel", "Cancel the highlighted task (asks first)"),
    # One key, two footer words: check_action shows the one that applies (same id, so a
    # [keymap] entry rebinds both).
    _bind("p", "pause", "Pause", "pause", "Pause or resume dispatching"),
    _bind("p", "resume", "Resume", "pause", "Resume dispatching"),
    _bind("plus", "grow", "+Worker", "grow", "Raise min workers by one (the pool grows)"),
    _bind("minus", "shrink", "-Worker", "shrink", "Lower min workers by one"),
    _bind("w", "resize", "Resize", "resize", "Set min and max workers (a form)"),
    _bind("slash", "search", "Search", "search", "Search ids, types and messages"),
    _bind("escape", "clear_search", "Clear search", "search.clear", "Clear the search", show=False),
    _bind("s", "sort_next", "Sort", "sort", "Sort by the next column"),
    _bind("o", "sort_reverse", "Order", "sort.reverse", "Reverse the sort order"),
    *(
        _bind(
            str(i),
            f"filter('{key}')",
            label,
            f"filter.{key}",
            f"Show {label.lower()} tasks",
            show=False,
        )
        for i, (key, label, _) in enumerate(FILTERS, 1)
    ),
    _bind("space", "toggle_mark", "Mark", "mark", "Mark or unmark the task (for B)", show=False),
    _bind(
        "B",
        "bulk",
        "Bulk",
        "bulk",
        "Cancel, retry or delete the marked tasks, or the filter's",
        show=False,
    ),
    _bind("l", "toggle_log", "Log", "log", "Show or hide the log panel"),
    _bind("t", "toggle_theme", "Theme", "theme", "Switch between light and dark"),
    _bind(
        "I",
        "instances",
        "Instances",
        "instances",
        "The cluster's instances (this one alone outside a cluster)",
    ),
    _bind("W", "workers", "Workers", "workers", "This instance's workers and their tasks"),
    _bind("S", "schedules", "Schedules", "schedules", "Recurring schedules: pause, run, add"),
    _bind("question_mark,f1", "help", "Help", "help", "Every key"),
    _bind("q", "quit", "Quit", "quit", f"Quit: {QUIT_HELP[0].lower()}{QUIT_HELP[1:]}"),
    _bind("ctrl+c", "quit", "Quit", "quit.ctrl_c", "Quit", show=False, priority=True),
]
"""The main view's bindings; every one has an id a ``[keymap]`` entry can rebind."""

DASHBOARD_ACTIONS = frozenset(
    b.action.split("(", 1)[0] for b in BINDINGS if isinstance(b, Binding) and b.action != "quit"
)
"""The main view's actions: a form's footer leaves them out (it shows the form's keys)."""

MAIN_ONLY_ACTIONS = frozenset(
    {
        "cancel_task",
        "grow",
        "shrink",
        "resize",
        "search",
        "clear_search",
        "sort_next",
        "sort_reverse",
        "filter",
        "toggle_mark",
        "bulk",
    }
)
"""Actions of the main view: hidden from the footer while another screen is on top."""


def key_rows(app: DashboardApp, overrides: dict[str, str]) -> list[KeyRow]:
    """Every binding, section by section, with the keys as currently bound."""
    rows: list[KeyRow] = []
    sections: list[tuple[str, Iterable[BindingType]]] = [
        ("Dashboard", BINDINGS),
        ("Task table", TaskTable.BINDINGS),
        ("Task detail", DetailScreen.BINDINGS),
        ("Submit form", SubmitScreen.BINDINGS),
        ("Resize form", ResizeScreen.BINDINGS),
        ("Bulk menu", BulkScreen.BINDINGS),
        ("Confirm", ConfirmScreen.BINDINGS),
        ("Help", HelpScreen.BINDINGS),
        ("Instances", InstancesScreen.BINDINGS),
        ("Workers", WorkersScreen.BINDINGS),
        ("Schedules", SchedulesScreen.BINDINGS),
        ("Schedule form", ScheduleForm.BINDINGS),
        ("Quitting", ShutdownScreen.BINDINGS),
    ]
    for section, bindings in sections:
        for b in bindings:
            if not isinstance(b, Binding) or b.id is None or b.action == "resume":
                continue
            keys = overrides.get(b.id, b.key)
            shown = ", ".join(
                app.get_key_display(Binding(k.strip(), b.action)) for k in keys.split(",")
            )
            rows.append((section, shown, b.tooltip or b.description, b.id))
    rows.append(("Everywhere", app.get_key_display(Binding("ctrl+p", "")), "Command palette", "-"))
    return rows


def palette_commands(app: DashboardApp) -> list[Command]:
    """What the command palette (Ctrl+P) offers: every action, by name."""
    cmds: list[Command] = [
        ("Submit tasks", "Open the submit form", app.action_submit),
        ("Open highlighted task", "Show the task's detail view", app.action_open_task),
        ("Cancel highlighted task", "Cancel it (asks first)", app.action_cancel_task),
        ("Pause / resume dispatch", "Running tasks go on", app.action_toggle_pause),
        ("Add a worker", "Raise min workers by one", app.action_grow),
        ("Remove a worker", "Lower min workers by one", app.action_shrink),
        ("Resize the pool", "Set min and max workers", app.action_resize),
        ("Search tasks", "Filter the table by text", app.action_search),
        ("Mark highlighted task", "Mark or unmark it for a bulk action", app.action_toggle_mark),
        ("Bulk action", "Cancel, retry or delete marked or filtered tasks", app.action_bulk),
        ("Clear search", "Show all matching tasks again", app.action_clear_search),
        ("Sort by next column", "Cycle the sort column", app.action_sort_next),
        ("Reverse sort order", "Ascending / descending", app.action_sort_reverse),
        ("Toggle log panel", "Show or hide the log", app.action_toggle_log),
        ("Toggle light / dark theme", "Switch themes", app.action_toggle_theme),
        ("Instances", "The cluster's instances, live", app.action_instances),
        ("Workers", "This instance's workers and their tasks", app.action_workers),
        ("Schedules", "Recurring schedules: pause, run now, add", app.action_schedules),
        ("Help: keys", "List every key", app.action_help),
        ("Quit", QUIT_HELP, app.request_quit),
    ]
    for key, label, _ in FILTERS:
        cmds.append((f"Filter: {label}", f"Show {label.lower()} tasks", _filter_command(app, key)))
    return cmds


def _filter_command(app: DashboardApp, key: str) -> Callable[[], None]:
    return lambda: app.action_filter(key)
