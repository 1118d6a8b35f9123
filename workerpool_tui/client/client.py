"""The client commands and their exit statuses.

0 success; 1 the server refused (its message is printed); 2 bad usage (one line);
3 no server reachable. ``watch`` exits 0 on Ctrl+C; ``submit --wait`` exits 0 only when
every submitted task completed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from ..config import Config, parse_duration
from .api import ApiClient, ApiError, ClientUsageError, ServerUrl, Unreachable, task_path
from .render import event_line, stats_view, task_detail, task_table
from .stream import EventStream, StreamLost

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINAL = frozenset({"completed", "failed", "cancelled"})
MAX_COUNT = 10_000
"""The most tasks one ``submit --count`` sends (one all-or-nothing batch)."""
WAIT_POLL_S = (0.05, 1.0)
"""``submit --wait`` polls each unfinished task, from the first interval up to the second."""
WAIT_POLL_RATE = 200.0
"""...and sends at most about this many requests per second, however many tasks it waits for."""


@dataclass
class Context:
    args: argparse.Namespace
    api: ApiClient
    out: Console
    err: Console

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def print_json(self, value: object) -> None:
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
        sys.stdout.flush()


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
    """``--token``, else ``WORKERPOOL_TOKEN``, else the config's ``server.auth_token``."""
    return args.token or environ.get("WORKERPOOL_TOKEN") or cfg.server.auth_token or None


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
        print(str(exc), file=sys.stderr)
        return EXIT_UNREACHABLE
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED


# -- submit --------------------------------------------------------------------------------


def _read_payload(raw: str) -> dict[str, Any]:
    """``--payload``: a JSON object, or ``@FILE`` holding one, or ``-`` for standard input."""
    source = "--payload"
    if raw == "-":
        raw, source = sys.stdin.read(), "--payload (stdin)"
    elif raw.startswith("@"):
        try:
            raw, source = Path(raw[1:]).read_text(encoding="utf-8"), f"--payload {raw}"
        except OSError as exc:
            raise ClientUsageError(f"--payload: cannot read {raw[1:]!r}: {exc.strerror}") from None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ClientUsageError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ClientUsageError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value


def submission(args: argparse.Namespace) -> dict[str, Any]:
    """The request body for one task, checked here so that bad usage exits 2."""
    body: dict[str, Any] = {
        "type": args.type,
        "payload": _read_payload(args.payload),
        "priority": args.priority,
    }
    if args.timeout is not None:
        try:
            body["timeout"] = parse_duration(args.timeout)
        except ValueError as exc:
            raise ClientUsageError(f"--timeout: {exc}") from None
    if args.max_retries is not None:
        if args.max_retries < 0:
            raise ClientUsageError(f"--max-retries: must be >= 0, got {args.max_retries}")
        body["max_retries"] = args.max_retries
    return body


def cmd_submit(ctx: Context) -> int:
    args = ctx.args
    if not 1 <= args.count <= MAX_COUNT:
        raise ClientUsageError(f"--count: must be between 1 and {MAX_COUNT}, got {args.count}")
    body = submission(args)
    if args.count == 1:
        tasks = [ctx.api.request("POST", "/api/v1/tasks", body)]
    else:
        tasks = ctx.api.request("POST", "/api/v1/tasks/batch", {"tasks": [body] * args.count})[
            "tasks"
        ]
    if args.wait:
        try:
            tasks = _wait_all(ctx, tasks)
        except KeyboardInterrupt:
            print("stopped waiting; the tasks keep running on the server", file=sys.stderr)
            return EXIT_INTERRUPTED
    if ctx.as_json:
        ctx.print_json(tasks[0] if args.count == 1 else {"tasks": tasks})
    else:
        verb = "finished" if args.wait else "submitted"
        ctx.out.print(task_table(tasks, title=f"{len(tasks)} task(s) {verb}"))
        for t in tasks:
            error = t.get("error")
            if isinstance(error, dict):
                ctx.err.print(f"[red]{t['id']}: {error.get('type')}: {error.get('message')}[/]")
    if args.wait and any(t.get("status") != "completed" for t in tasks):
        return EXIT_REFUSED
    return EXIT_OK


def _wait_all(ctx: Context, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Poll each unfinished task until all are final; returns them in submission order."""
    latest = {t["id"]: t for t in tasks}
    waiting = [t["id"] for t in tasks if t.get("status") not in FINAL]
    interval = WAIT_POLL_S[0]
    status = ctx.err.status("waiting…") if ctx.err.is_terminal and not ctx.as_json else None
    if status is not None:
        status.start()
    try:
        while waiting:
            time.sleep(interval)
            interval = min(max(WAIT_POLL_S[1], len(waiting) / WAIT_POLL_RATE), interval * 2)
            still = []
            for task_id in waiting:
                task = ctx.api.request("GET", task_path(task_id))
                latest[task_id] = task
                if task.get("status") not in FINAL:
                    still.append(task_id)
            waiting = still
            if status is not None:
                status.update(f"waiting for {len(waiting)} of {len(latest)} task(s)…")
    finally:
        if status is not None:
            status.stop()
    return [latest[t["id"]] for t in tasks]


# -- list, get, cancel, stats ---------------------------------------------------------------


def cmd_list(ctx: Context) -> int:
    args = ctx.args
    if args.status is not None and args.status not in STATUSES:
        raise ClientUsageError(
            f"--status: expected one of {', '.join(STATUSES)}, got {args.status!r}"
        )
    if args.limit < 1 or args.offset < 0:
        raise ClientUsageError("--limit must be >= 1 and --offset >= 0")
    query: dict[str, str | int] = {"limit": args.limit, "offset": args.offset}
    if args.status:
        query["status"] = args.status
    if args.type_:
        query["type"] = args.type_
    data = ctx.api.request("GET", "/api/v1/tasks", query=query)
    if ctx.as_json:
        ctx.print_json(data)
        return EXIT_OK
    tasks = data.get("tasks", [])
    total = data.get("total", len(tasks))
    shown = f"{args.offset + 1}-{args.offset + len(tasks)}" if tasks else "none"
    ctx.out.print(task_table(tasks, title=f"tasks {shown} of {total}, newest first"))
    return EXIT_OK


def cmd_get(ctx: Context) -> int:
    task = ctx.api.request("GET", task_path(ctx.args.id))
    if ctx.as_json:
        ctx.print_json(task)
    else:
        ctx.out.print(task_detail(task))
    return EXIT_OK


def cmd_cancel(ctx: Context) -> int:
    task = ctx.api.request("DELETE", task_path(ctx.args.id))
    if ctx.as_json:
        ctx.print_json(task)
    else:
        ctx.out.print(task_table([task], title=f"cancelled {task.get('id')}"))
    return EXIT_OK


def cmd_stats(ctx: Context) -> int:
    stats = ctx.api.request("GET", "/api/v1/tasks/status/stats")
    if ctx.as_json:
        ctx.print_json(stats)
    else:
        ctx.out.print(stats_view(stats))
    return EXIT_OK


# -- watch ----------------------------------------------------------------------------------


def cmd_watch(ctx: Context) -> int:
    """Print each event as it arrives until Ctrl+C (exit 0) or the server goes away (3)."""
    stream = EventStream(ctx.api.server, ctx.api.token)
    try:
        stream.connect()
        if not ctx.as_json:
            ctx.err.print(f"[dim]watching {ctx.api.server.url} — Ctrl+C to stop[/]")
        for message in stream.messages():
            if ctx.as_json:
                ctx.print_json(message)
                continue
            line = event_line(message)
            if line is not None:
                ctx.out.print(line)
                ctx.out.file.flush()
        why = f" ({stream.close_code}{' ' + stream.close_reason if stream.close_reason else ''})"
        print(f"the server closed the stream{why}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    except StreamLost as exc:
        print(f"error: connection to {ctx.api.server.url} lost: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        stream.close()


COMMANDS: dict[str, Callable[[Context], int]] = {
    "submit": cmd_submit,
    "list": cmd_list,
    "get": cmd_get,
    "cancel": cmd_cancel,
    "stats": cmd_stats,
    "watch": cmd_watch,
}
