"""``workerpool-tui logs ID [-f]``: a task's log lines; with ``-f``, followed live until the
task ends, like ``pueue follow`` (long polls of ``GET /api/v1/tasks/{id}/logs``).

Exit status: without ``-f`` 0; with ``-f`` the task's end: 0 completed, 1 failed or
cancelled, 130 on Ctrl+C (the task goes on)."""

from __future__ import annotations

import sys
from typing import Any

from .api import task_path
from .context import EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, Context, task_id_arg

FOLLOW_WAIT_S = 25
"""Each long poll's wait (the server allows 30 s; the client reads for 60 s)."""


def cmd_logs(ctx: Context) -> int:
    path = task_path(task_id_arg(ctx.args.id)) + "/logs"
    expect = ("lines", "next", "final")
    page: dict[str, Any] = ctx.api.request("GET", path, query={"since": 0}, expect=expect)
    if page.get("since", 0) > 0:
        ctx.err.print(f"[dim]… {page['since']} earlier line(s) no longer kept[/]")
    try:
        _show(ctx, page)
        while ctx.args.follow and not page.get("final"):
            query: dict[str, str | int] = {"since": page["next"], "wait": FOLLOW_WAIT_S}
            page = ctx.api.request("GET", path, query=query, expect=expect)
            _show(ctx, page)
    except KeyboardInterrupt:
        print("stopped following; the task goes on on the server", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not ctx.args.follow:
        return EXIT_OK
    status = page.get("status")
    if not ctx.as_json:
        ctx.err.print(f"[dim]task {page.get('id')} {status}[/]")
    return EXIT_OK if status == "completed" else EXIT_REFUSED


def _show(ctx: Context, page: dict[str, Any]) -> None:
    lines = page.get("lines") or []
    if ctx.as_json:
        ctx.print_json(page)
        return
    if lines:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
