"""``schedules`` (list) and ``schedule add|pause|resume|delete|run NAME``: recurring
schedules of a running server (``docs/scheduling.md``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rich.table import Table

from .api import ClientUsageError
from .context import EXIT_OK, Context
from .render import STATUS_STYLE
from .submit import _read_payload

ACTIONS = ("add", "pause", "resume", "delete", "run")


def _path(name: str) -> str:
    return "/api/v1/schedules/" + quote(name, safe="")


def schedule_table(schedules: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for column in ("NAME", "RULE", "TYPE", "NEXT RUN", "LAST RUN", "LAST TASK", "STATUS", "FROM"):
        table.add_column(column, no_wrap=True)
    for s in schedules:
        rule = f"cron {s.get('cron')}" if s.get("cron") else f"every {s.get('every'):g}s"
        if s.get("timezone") not in (None, "UTC"):
            rule += f" ({s['timezone']})"
        status = s.get("last_status") or "-"
        style = STATUS_STYLE.get(status, "")
        table.add_row(
            str(s.get("name")),
            rule,
            str(s.get("type")),
            "paused" if s.get("paused") else str(s.get("next_run") or "-"),
            str(s.get("last_run") or "-"),
            str(s.get("last_task_id") or "-"),
            f"[{style}]{status}[/]" if style else status,
            str(s.get("source")),
        )
    return table


def cmd_schedules(ctx: Context) -> int:
    data = ctx.api.request("GET", "/api/v1/schedules", expect=("schedules",))
    if ctx.as_json:
        ctx.print_json(data)
    else:
        ctx.out.print(schedule_table(data.get("schedules", []), "schedules"))
    return EXIT_OK


def cmd_schedule(ctx: Context) -> int:
    args = ctx.args
    action, name = args.action, args.name
    if action == "add":
        if not args.type:
            raise ClientUsageError("schedule add: give the task TYPE after the NAME")
        if (args.cron is None) == (args.every is None):
            raise ClientUsageError("schedule add: give one of --cron or --every")
        body: dict[str, Any] = {
            "name": name,
            "type": args.type,
            "payload": _read_payload(args.payload),
            "priority": args.priority,
            "timezone": args.timezone,
        }
        if args.cron is not None:
            body["cron"] = args.cron
        if args.every is not None:
            body["every"] = args.every
        if args.timeout is not None:
            body["timeout"] = args.timeout
        result = ctx.api.request("POST", "/api/v1/schedules", body=body, expect=("name",))
        title = f"added {name}"
    elif args.type or args.cron or args.every:
        raise ClientUsageError(f"schedule {action}: takes only a NAME")
    elif action in ("pause", "resume"):
        result = ctx.api.request(
            "PATCH", _path(name), body={"paused": action == "pause"}, expect=("name",)
        )
        title = f"{action}d {name}"
    elif action == "delete":
        result = ctx.api.request("DELETE", _path(name), expect=("name",))
        title = f"deleted {name}"
    else:
        ran = ctx.api.request("POST", _path(name) + "/run", expect=("schedule",))
        if ctx.as_json:
            ctx.print_json(ran)
            return EXIT_OK
        result = ran["schedule"]
        title = f"ran {name}: task {ran.get('task_id') or 'refused (see the server log)'}"
    if ctx.as_json:
        ctx.print_json(result)
    else:
        ctx.out.print(schedule_table([result], title))
    return EXIT_OK
