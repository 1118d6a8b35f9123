"""The client commands and their exit statuses.

0 success; 1 the server refused (its message is printed); 2 bad usage (one line);
3 no workerpool server reachable at the URL (nothing listening, or something else, see
:mod:`.api`). ``watch`` exits 0 on Ctrl+C; ``submit --wait`` and ``retry --wait`` exit 0
only when every task they waited for completed.

``get``, ``cancel`` and ``retry`` take a task id or a unique prefix of it (4+ characters,
such as the 8 the dashboard shows); a prefix that several ids start with is refused by
the server (``ambiguous_id``), and the candidates it names are printed one a line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console

from ..config import Config, undecodable
from .api import ApiClient, ApiError, ClientUsageError, ServerUrl, Unreachable, task_path
from .bulk import bulk_filter, cmd_clean, run_bulk
from .context import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Context,
    task_id_arg,
)
from .logs import cmd_logs
from .render import stats_view, task_detail, task_table
from .schedules import cmd_schedule, cmd_schedules
from .submit import cmd_retry_one, cmd_submit
from .watch import cmd_watch

STATUSES = ("pending", "running", "completed", "failed", "cancelled")
LIST_LIMIT_MAX = 1000
"""The server's largest page (SPEC §11)."""


def default_url(cfg: Config) -> str:
    """``http://{server.host}:{server.port}``; a wildcard bind address means this machine."""
    host = cfg.server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{cfg.server.port}"


def resolve_token(args: argparse.Namespace, cfg: Config, environ: Mapping[str, str]) -> str | None:
    """``--token``, else ``WORKERPOOL_TOKEN``, else the config's ``server.auth_token``.

    A token is sent in an HTTP header, so it must be visible ASCII (the server's
    ``server.auth_token`` is held to the same rule)."""
    for source, token in (
        ("--token", args.token),
        ("WORKERPOOL_TOKEN", environ.get("WORKERPOOL_TOKEN")),
        ("server.auth_token", cfg.server.auth_token),
    ):
        if not token:
            continue
        if undecodable(token) or not all("!" <= ch <= "~" for ch in token):
            raise ClientUsageError(f"{source}: a token must be visible ASCII, with no spaces")
        return token
    return None


def run_client(args: argparse.Namespace, cfg: Config, environ: Mapping[str, str]) -> int:
    out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, soft_wrap=True)
    try:
        server = ServerUrl.parse(args.url or default_url(cfg))
        with ApiClient(server, resolve_token(args, cfg, environ)) as api:
            return COMMANDS[args.command](Context(args, api, out, err))
    except ClientUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ApiError as exc:
        print(_refusal(exc, getattr(args, "id", None)), file=sys.stderr)
        return EXIT_REFUSED


def _refusal(exc: ApiError, task_id: str | None) -> str:
    """The server's refusal; an ambiguous id prefix lists the ids it matches, one a line."""
    if exc.code != "ambiguous_id" or not exc.candidates or task_id is None:
        return f"error: {exc}"
    lines = [
        f"error: more than one task id starts with {task_id.strip()!r}"
        f" ({exc.code}, HTTP {exc.status}); give more characters of one of:"
    ]
    return "\n".join(lines + [f"  {candidate}" for candidate in exc.candidates])


# -- list, get, cancel, stats ---------------------------------------------------------------


def _statuses(raw: str) -> str:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in STATUSES]
    if unknown or not names:
        raise ClientUsageError(
            f"--status: expected one or more of {', '.join(STATUSES)} (comma-separated),"
            f" got {raw!r}"
        )
    return ",".join(names)


def cmd_list(ctx: Context) -> int:
    args = ctx.args
    if not 1 <= args.limit <= LIST_LIMIT_MAX:
        raise ClientUsageError(f"--limit: must be between 1 and {LIST_LIMIT_MAX}, got {args.limit}")
    if args.offset < 0:
        raise ClientUsageError(f"--offset: must be >= 0, got {args.offset}")
    query: dict[str, str | int] = {"limit": args.limit, "offset": args.offset}
    if args.status is not None:
        query["status"] = _statuses(args.status)
    if args.type_:
        query["type"] = args.type_
    if args.search:
        query["q"] = args.search
    data = ctx.api.request("GET", "/api/v1/tasks", query=query, expect=("tasks", "total"))
    if ctx.as_json:
        ctx.print_json(data)
        return EXIT_OK
    tasks = data.get("tasks", [])
    total = data.get("total", len(tasks))
    shown = f"{args.offset + 1}-{args.offset + len(tasks)}" if tasks else "none"
    ctx.out.print(task_table(tasks, title=f"tasks {shown} of {total}, newest first"))
    return EXIT_OK


def cmd_get(ctx: Context) -> int:
    task = ctx.api.request("GET", task_path(task_id_arg(ctx.args.id)), expect=("id", "status"))
    if ctx.as_json:
        ctx.print_json(task)
    else:
        ctx.out.print(task_detail(task))
    return EXIT_OK


def one_or_bulk(ctx: Context, action: str) -> dict[str, Any] | None:
    """The bulk filter of ``cancel``/``retry`` when they are given one instead of an ID."""
    flt = bulk_filter(ctx, action)
    if ctx.args.id is not None and flt is not None:
        raise ClientUsageError("give a task ID or a filter (--status, --type, ...), not both")
    if ctx.args.id is None and flt is None:
        raise ClientUsageError(
            "give a task ID, or a filter: --status, --type, --search, --older-than"
        )
    if flt is not None and getattr(ctx.args, "wait", False):
        raise ClientUsageError("--wait: applies to one task (an ID), not to a filter")
    return flt


def cmd_cancel(ctx: Context) -> int:
    flt = one_or_bulk(ctx, "cancel")
    if flt is not None:
        return run_bulk(ctx, "cancel", flt)
    task = ctx.api.request("DELETE", task_path(task_id_arg(ctx.args.id)), expect=("id",))
    if ctx.as_json:
        ctx.print_json(task)
    else:
        ctx.out.print(task_table([task], title=f"cancelled {task.get('id')}"))
    return EXIT_OK


def cmd_retry(ctx: Context) -> int:
    flt = one_or_bulk(ctx, "retry")
    if flt is not None:
        return run_bulk(ctx, "retry", flt)
    return cmd_retry_one(ctx)


def cmd_stats(ctx: Context) -> int:
    stats = ctx.api.request("GET", "/api/v1/tasks/status/stats", expect=("tasks", "workers"))
    if ctx.as_json:
        ctx.print_json(stats)
    else:
        ctx.out.print(stats_view(stats))
    return EXIT_OK


COMMANDS: dict[str, Callable[[Context], int]] = {
    "submit": cmd_submit,
    "list": cmd_list,
    "get": cmd_get,
    "cancel": cmd_cancel,
    "retry": cmd_retry,
    "clean": cmd_clean,
    "logs": cmd_logs,
    "stats": cmd_stats,
    "watch": cmd_watch,
    "schedules": cmd_schedules,
    "schedule": cmd_schedule,
}
