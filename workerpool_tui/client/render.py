"""How the client shows things to people: Rich tables and one-line event descriptions.

Everything here takes the server's JSON (dicts) and returns Rich renderables or markup;
nothing here talks to the network.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "pending": "yellow",
    "running": "bold cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
_BAR_CELLS = 10


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def progress_text(pct: float) -> Text:
    """A ten-cell bar and the percentage: ``█████░░░░░  50%``."""
    pct = max(0.0, min(100.0, float(pct)))
    filled = round(pct / 100 * _BAR_CELLS)
    text = Text("█" * filled, style="cyan")
    text.append("░" * (_BAR_CELLS - filled), style="dim")
    text.append(f" {pct:3.0f}%")
    return text


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def clock(value: str | None) -> str:
    """An RFC 3339 timestamp as local ``HH:MM:SS``."""
    moment = parse_time(value)
    return moment.astimezone().strftime("%H:%M:%S") if moment else "-"


def human_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def duration(task: dict[str, Any], now: datetime | None = None) -> str:
    """Run time: finished - started, or so far for a running task."""
    started = parse_time(task.get("started_at"))
    if started is None:
        return "-"
    finished = parse_time(task.get("finished_at")) or now or datetime.now(timezone.utc)
    return human_seconds(max(0.0, (finished - started).total_seconds()))


def task_table(tasks: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    table.add_column("ID", no_wrap=True, overflow="fold")
    table.add_column("TYPE", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("PROGRESS", no_wrap=True)
    table.add_column("PRI", justify="right")
    table.add_column("TRIES", justify="right")
    table.add_column("CREATED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("WORKER", justify="right")
    now = datetime.now(timezone.utc)
    for t in tasks:
        table.add_row(
            str(t.get("id", "")),
            escape(str(t.get("type", ""))),
            status_text(str(t.get("status", ""))),
            progress_text(float(t.get("progress") or 0)),
            str(t.get("priority", 0)),
            f"{t.get('attempts', 0)}/{int(t.get('max_retries', 0)) + 1}",
            clock(t.get("created_at")),
            duration(t, now),
            "-" if t.get("worker") is None else str(t["worker"]),
        )
    return table


def task_detail(task: dict[str, Any]) -> RenderableType:
    """Everything about one task: fields, payload, result or error, its log lines."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("id", str(task.get("id")))
    grid.add_row("type", escape(str(task.get("type"))))
    grid.add_row("status", status_text(str(task.get("status"))))
    grid.add_row("progress", progress_text(float(task.get("progress") or 0)))
    if task.get("message"):
        grid.add_row("message", escape(str(task["message"])))
    grid.add_row("priority", str(task.get("priority")))
    grid.add_row("attempts", f"{task.get('attempts')} (max retries {task.get('max_retries')})")
    grid.add_row("timeout", human_seconds(float(task.get("timeout_s") or 0)))
    for key in ("created_at", "started_at", "finished_at"):
        grid.add_row(key.replace("_at", ""), str(task.get(key) or "-"))
    grid.add_row("duration", duration(task))
    grid.add_row("worker", "-" if task.get("worker") is None else str(task["worker"]))
    if task.get("retry_of"):
        grid.add_row("retry of", str(task["retry_of"]))
    parts: list[RenderableType] = [
        grid,
        Panel(_json(task.get("payload")), title="payload", expand=False),
    ]
    error = task.get("error")
    if isinstance(error, dict):
        body = Text(f"{error.get('type')}: {error.get('message')}", style="bold red")
        if error.get("traceback"):
            body.append("\n\n" + str(error["traceback"]).rstrip(), style="red")
        parts.append(Panel(body, title="error", border_style="red", expand=False))
    elif task.get("status") == "completed":
        parts.append(
            Panel(_json(task.get("result")), title="result", border_style="green", expand=False)
        )
    logs = task.get("logs") or []
    if logs:
        parts.append(Panel(Text("\n".join(str(line) for line in logs)), title="logs", expand=False))
    return Group(*parts)


def _json(value: object) -> RenderableType:
    return JSON(msgspec.json.encode(value).decode())


def stats_view(stats: dict[str, Any]) -> RenderableType:
    tasks = stats.get("tasks", {})
    queue = stats.get("queue", {})
    workers = stats.get("workers", {})
    throughput = stats.get("throughput", {})
    latency = stats.get("latency", {})

    counts = Table(title="tasks", title_justify="left", header_style="bold")
    names = ["total", "pending", "running", "completed", "failed", "cancelled"]
    if tasks.get("scheduled") or tasks.get("blocked"):  # pending ones waiting (issue 12)
        names[2:2] = ["scheduled", "blocked"]
    for name in names:
        counts.add_column(name.upper(), justify="right", style=STATUS_STYLE.get(name, ""))
    counts.add_row(*(str(tasks.get(n, 0)) for n in names))

    pool = Table.grid(padding=(0, 2))
    pool.add_column(style="bold")
    pool.add_column()
    pool.add_row(
        "workers",
        f"{workers.get('current', 0)} ({workers.get('busy', 0)} busy, "
        f"{workers.get('idle', 0)} idle; min {workers.get('min')}, max {workers.get('max')})"
        + ("  [bold yellow]paused[/]" if workers.get("paused") else ""),
    )
    pool.add_row("queue", f"{queue.get('depth', 0)} / {queue.get('capacity', 0)}")
    pool.add_row(
        "throughput",
        f"{throughput.get('completed_per_s', 0)}/s over the last "
        f"{throughput.get('window_s', 60)}s ({throughput.get('completed_last_s', 0)} last second)",
    )
    for key, label in (("queue_wait_s", "queue wait"), ("run_s", "run time")):
        p = latency.get(key)
        if isinstance(p, dict):
            pool.add_row(
                label,
                "p50 {}  p95 {}  p99 {}".format(
                    *(human_seconds(float(p.get(q, 0))) for q in ("p50", "p95", "p99"))
                ),
            )
    pool.add_row("uptime", human_seconds(float(stats.get("uptime_s", 0))))
    return Group(counts, Text(""), pool)
