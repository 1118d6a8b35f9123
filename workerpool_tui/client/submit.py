"""``submit`` (one task, or ``--count`` copies in batches) and ``retry``, with ``--wait``.

The server admits at most :data:`BATCH_MAX` tasks in one all-or-nothing batch, so a larger
``--count`` goes as several batches in order. A refused batch (a full queue, say) stops the
rest: the tasks already created stay and run, they are printed, and one line on stderr
says how many were created and why the rest were not (exit 1; 3 if the server went away).
A batch whose body is too large for the server (HTTP 413: a big payload times 1,000) is
halved and sent again, which is safe because a refused batch created nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from ..config import parse_duration, undecodable
from .api import ApiError, ClientUsageError, Unreachable, task_path
from .context import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    Context,
    task_id_arg,
)
from .render import task_table

FINAL = frozenset({"completed", "failed", "cancelled"})
MAX_COUNT = 10_000
"""The most tasks one ``submit --count`` sends (a guard against a mistyped number)."""
BATCH_MAX = 1000
"""The most tasks the server admits in one batch (``server/limits.py`` MAX_BATCH_TASKS)."""
WAIT_POLL_S = (0.05, 1.0)
"""``--wait`` polls each unfinished task, from the first interval up to the second."""
WAIT_POLL_RATE = 200.0
"""...and sends at most about this many requests per second, however many tasks it waits for."""


def _read_text(raw: str) -> tuple[str, str]:
    """``--payload``'s text and where it came from: the value, ``@FILE`` or ``-`` (stdin)."""
    if raw == "-":
        data, source = sys.stdin.buffer.read(), "--payload (stdin)"
    elif raw.startswith("@"):
        source = f"--payload {raw}"
        try:
            data = Path(raw[1:]).read_bytes()
        except OSError as exc:
            raise ClientUsageError(f"--payload: cannot read {raw[1:]!r}: {exc.strerror}") from None
    else:
        if undecodable(raw):
            raise ClientUsageError("--payload: not valid UTF-8 text")
        return raw, "--payload"
    try:
        return data.decode("utf-8"), source
    except UnicodeDecodeError as exc:
        raise ClientUsageError(
            f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _read_payload(raw: str) -> dict[str, Any]:
    """``--payload``: a JSON object, or ``@FILE`` holding one, or ``-`` for standard input."""
    text, source = _read_text(raw)
    try:
        value = msgspec.json.decode(text)
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
    }
    if args.priority is not None:  # left out: the server applies the type's default
        body["priority"] = args.priority
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


def submit_batches(
    ctx: Context, body: dict[str, Any], count: int
) -> tuple[list[dict[str, Any]], ApiError | Unreachable | None]:
    """Submit ``count`` copies of ``body`` in batches; the tasks created, and what stopped
    the rest (``None`` when all were created). Nothing created at all re-raises."""
    created: list[dict[str, Any]] = []
    size = BATCH_MAX
    while len(created) < count:
        n = min(size, count - len(created))
        try:
            answer = ctx.api.request(
                "POST", "/api/v1/tasks/batch", {"tasks": [body] * n}, expect=("tasks",)
            )
        except ApiError as exc:
            if exc.status == 413 and n > 1:
                size = n // 2  # the body was too large; the batch created nothing
                continue
            if not created:
                raise
            return created, exc
        except Unreachable as exc:
            if not created:
                raise
            return created, exc
        created.extend(answer["tasks"])
    return created, None


def _stopped_line(created: int, count: int, why: ApiError | Unreachable) -> str:
    rest = count - created
    if isinstance(why, ApiError):
        return f"error: created {created} of {count} tasks; the other {rest} were not: {why}"
    return (
        f"error: created {created} of {count} tasks; the other {rest} were not confirmed"
        f" (the last batch may or may not have been created): {why}"
    )


def cmd_submit(ctx: Context) -> int:
    args = ctx.args
    if not 1 <= args.count <= MAX_COUNT:
        raise ClientUsageError(f"--count: must be between 1 and {MAX_COUNT}, got {args.count}")
    body = submission(args)
    stopped: ApiError | Unreachable | None = None
    if args.count == 1:
        tasks = [ctx.api.request("POST", "/api/v1/tasks", body, expect=("id",))]
    else:
        tasks, stopped = submit_batches(ctx, body, args.count)
    if args.wait and stopped is None:
        try:
            tasks = _wait_all(ctx, tasks)
        except KeyboardInterrupt:
            print("stopped waiting; the tasks keep running on the server", file=sys.stderr)
            return EXIT_INTERRUPTED
    if ctx.as_json:
        ctx.print_json(tasks[0] if args.count == 1 else {"tasks": tasks})
    else:
        verb = "finished" if args.wait and stopped is None else "submitted"
        ctx.out.print(task_table(tasks, title=f"{len(tasks)} task(s) {verb}"))
        _print_errors(ctx, tasks)
    if stopped is not None:
        print(_stopped_line(len(tasks), args.count, stopped), file=sys.stderr)
        return EXIT_REFUSED if isinstance(stopped, ApiError) else EXIT_UNREACHABLE
    if args.wait and any(t.get("status") != "completed" for t in tasks):
        return EXIT_REFUSED
    return EXIT_OK


def cmd_retry_one(ctx: Context) -> int:
    """A new task with the old one's type, payload and options (``retry_of`` links them)."""
    old = task_id_arg(ctx.args.id)
    task = ctx.api.request("POST", task_path(old) + "/retry", expect=("id",))
    if ctx.args.wait:
        try:
            task = _wait_all(ctx, [task])[0]
        except KeyboardInterrupt:
            print("stopped waiting; the task keeps running on the server", file=sys.stderr)
            return EXIT_INTERRUPTED
    if ctx.as_json:
        ctx.print_json(task)
    else:
        title = f"retried {task.get('retry_of') or old} as {task.get('id')}"
        ctx.out.print(task_table([task], title=title))
        _print_errors(ctx, [task])
    if ctx.args.wait and task.get("status") != "completed":
        return EXIT_REFUSED
    return EXIT_OK


def _print_errors(ctx: Context, tasks: list[dict[str, Any]]) -> None:
    for t in tasks:
        error = t.get("error")
        if isinstance(error, dict):
            ctx.err.print(f"[red]{t['id']}: {error.get('type')}: {error.get('message')}[/]")


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
                task = ctx.api.request("GET", task_path(task_id), expect=("id", "status"))
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
