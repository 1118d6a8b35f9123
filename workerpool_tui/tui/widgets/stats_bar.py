"""The stats bar: pool, queue, counts, rate, loop lag, API side-car, event drops."""

from __future__ import annotations

import msgspec
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...core.engine import EngineStats
from ..view_model import ServerStatus

NARROW = 120
"""Narrower than this, the bar uses short words so both lines fit 80 columns."""


class StatsLine(msgspec.Struct, frozen=True):
    """Everything the bar shows, so equal values skip the redraw."""

    stats: EngineStats
    server: ServerStatus
    resyncs: int = 0
    show_timing: bool = True
    """False in snapshot baselines: rate and loop lag vary from run to run."""


class StatsBar(Widget):
    """Two lines of figures; redrawn only when a figure changed."""

    DEFAULT_CSS = """
    StatsBar {
        height: 2;
        padding: 0 1;
        background: $boost;
    }
    """

    line: reactive[StatsLine | None] = reactive(None, layout=False)
    """The figures shown."""

    def render(self) -> Text:
        line = self.line
        if line is None:
            return Text("starting…", style="dim")
        if self.size.width < NARROW:
            return self._figures(line, short=True)
        return self._figures(line, short=False)

    def _figures(self, line: StatsLine, *, short: bool) -> Text:
        """Two lines that never wrap (cut with … at the edge); ``short`` for narrow screens."""
        s = line.stats
        w, q, t = s.workers, s.queue, s.tasks
        out = Text(no_wrap=True, overflow="ellipsis")
        sep = " │ " if short else "  │  "
        label = "bold"
        out.append("Workers ", style=label)
        out.append(f"{w.current}")
        if short:
            out.append(f" ({w.busy} busy, {w.min}-{w.max})")
        else:
            out.append(f" ({w.busy} busy, min {w.min}, max {w.max})")
        if not w.auto_scaling:
            out.append(" fixed", style="dim")
        if w.paused:
            warning = self.app.current_theme.warning or "yellow"
            out.append(" ")
            out.append(" PAUSED ", style=f"bold reverse {warning}")
        out.append(sep, style="dim")
        out.append("Queue ", style=label)
        out.append(f"{q.depth}/{q.capacity}")
        out.append(sep, style="dim")
        if line.show_timing:
            out.append(f"{s.throughput.completed_last_s:,.0f}", style="bold")
            out.append("/s" if short else " tasks/s")
            if not short:
                out.append(f" (avg {s.throughput.completed_per_s:,.1f})", style="dim")
            out.append(sep, style="dim")
            out.append("lag " if short else "loop lag ", style=label)
            out.append(f"{s.latency.loop_lag_s * 1000:.0f} ms")
            out.append(sep, style="dim")
        out.append("API ", style=label)
        srv = line.server
        if srv.address is not None:
            out.append(srv.address)
            if srv.ws_clients >= 0:  # (-1: not known, attached to a remote server)
                out.append(f" · {srv.ws_clients} ws client{'s' if srv.ws_clients != 1 else ''}")
        elif short:
            out.append("off", style="dim")
        else:
            out.append(f"off: {srv.error or 'not running'}", style="dim")
        out.append("\n")
        out.append("Tasks ", style=label)
        out.append(f"{t.total:,}")
        if short:
            out.append(f"  pend {t.pending:,}")
            if t.scheduled or t.blocked:  # waiting for a time or for parents (scheduling.md)
                out.append(f" (+{t.scheduled:,} sched, {t.blocked:,} blk)")
            out.append(f"  run {t.running:,}  done {t.completed:,}")
            out.append(f"  fail {t.failed:,}  canc {t.cancelled:,}")
        else:
            out.append(f"  pending {t.pending:,}")
            if t.scheduled or t.blocked:
                out.append(f" (+{t.scheduled:,} scheduled, {t.blocked:,} blocked)")
            out.append(f"  running {t.running:,}  completed {t.completed:,}")
            out.append(f"  failed {t.failed:,}  cancelled {t.cancelled:,}")
        out.append(sep, style="dim")
        out.append("events ", style=label)
        if short:
            out.append(f"{s.bus.published:,} ({s.bus.dropped:,} dropped)")
        else:
            out.append(f"{s.bus.published:,} published, {s.bus.dropped:,} coalesced/dropped")
        if line.resyncs:
            out.append(f", {line.resyncs} resync{'s' if line.resyncs != 1 else ''}")
        return out
