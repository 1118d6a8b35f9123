"""Bulk actions from the command line: ``cancel``/``retry`` with a filter instead of an ID,
and ``clean`` (``POST /api/v1/tasks/bulk``).

Each first asks the server what it would do (``dry_run``) and prints it; then, unless
``--yes``, asks for confirmation on the terminal (without one, and without ``--yes``, it
refuses: exit 2). Exit status: 0 done (or nothing to do), 1 declined or refused."""

from __future__ import annotations

import sys
from typing import Any

from ..config import parse_duration
from .api import ClientUsageError
from .context import EXIT_OK, EXIT_REFUSED, Context

STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINAL = "completed,failed,cancelled"
VERBS = {
    "cancel": ("cancel", "cancelled"),
    "retry": ("retry", "retried"),
    "delete": ("delete", "deleted"),
}


def bulk_filter(ctx: Context, action: str) -> dict[str, Any] | None:
    """The filter the options give; ``None`` when none was given (cancel and retry then
    need an ID)."""
    args = ctx.args
    flt: dict[str, Any] = {}
    status = args.status if args.status is not None else (FINAL if action == "delete" else None)
    if status is not None:
        names = [n.strip() for n in status.split(",") if n.strip()]
        bad = [n for n in names if n not in STATUSES]
        if bad or not names:
            raise ClientUsageError(
                f"--status: expected one or more of {', '.join(STATUSES)} (comma-separated),"
                f" got {status!r}"
            )
        flt["status"] = names
    if args.type_:
        flt["type"] = args.type_
    if args.search:
        flt["q"] = args.search
    if args.older_than is not None:
        try:
            flt["older_than"] = parse_duration(args.older_than)
        except ValueError as exc:
            raise ClientUsageError(f"--older-than: {exc}") from None
    return flt if flt or action == "delete" else None


def _describe(flt: dict[str, Any]) -> str:
    parts = []
    if "status" in flt:
        parts.append("status " + ",".join(flt["status"]))
    if "type" in flt:
        parts.append(f"type {flt['type']}")
    if "q" in flt:
        parts.append(f"matching {flt['q']!r}")
    if "older_than" in flt:
        parts.append(f"older than {flt['older_than']:g}s")
    return ", ".join(parts) or "all"


def _skipped(result: dict[str, Any]) -> str:
    skipped = result.get("skipped") or {}
    if not skipped:
        return ""
    return " (skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) + ")"


def run_bulk(ctx: Context, action: str, flt: dict[str, Any]) -> int:
    verb, done = VERBS[action]
    expect = ("matched", "changed")
    body: dict[str, Any] = {"action": action, "filter": flt}
    plan = ctx.api.request("POST", "/api/v1/tasks/bulk", {**body, "dry_run": True}, expect=expect)
    what = f"{plan['changed']} of {plan['matched']} task(s) matching {_describe(flt)}"
    if not plan["changed"]:
        if ctx.as_json:
            ctx.print_json(plan)
        else:
            ctx.err.print(f"nothing to {verb}: {what}{_skipped(plan)}")
        return EXIT_OK
    if not ctx.args.yes:
        if not sys.stdin.isatty():
            raise ClientUsageError(f"would {verb} {what}; not a terminal to confirm on: add --yes")
        ctx.err.print(f"would {verb} {what}{_skipped(plan)}")
        try:
            answer = input("proceed? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            ctx.err.print("nothing changed")
            return EXIT_REFUSED
    result = ctx.api.request("POST", "/api/v1/tasks/bulk", body, expect=expect)
    if ctx.as_json:
        ctx.print_json(result)
    else:
        ctx.out.print(
            f"{done} {result['changed']} of {result['matched']} matched task(s){_skipped(result)}"
        )
    return EXIT_OK


def cmd_clean(ctx: Context) -> int:
    flt = bulk_filter(ctx, "delete")
    assert flt is not None
    return run_bulk(ctx, "delete", flt)
