"""A schedule's rule: what ``[[schedule]]`` and the API give (:class:`ScheduleSpec`), whether it
can run, and its due times, pure functions of the rule with no engine or clock behind them.

``every`` runs at whole multiples of its period since the epoch, ``cron`` (5 fields, or 6
with seconds, through ``croniter``) in its ``timezone`` (DST as croniter handles it). A run
is submitted under :func:`run_key`, ``schedule:NAME:DUE``, held :data:`KEY_HOLD_S`, so a due
time is submitted once whoever tries again (see :mod:`.schedules`, the scheduler).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter  # type: ignore[import-untyped]

KEY_PREFIX = "schedule:"
KEY_HOLD_S = 86400.0
"""How long a run's unique key stays taken (a due time is never submitted twice)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ScheduleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A schedule as ``[[schedule]]`` and ``POST /api/v1/schedules`` give it."""

    name: str
    type: str
    cron: str | None = None
    every: float | None = None
    """Seconds between runs (the API and the config also take a duration string)."""
    timezone: str = "UTC"
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int = 0
    timeout: float | None = None
    max_retries: int | None = None
    paused: bool = False
    overlap: Literal["skip", "allow"] = "skip"
    catch_up: Literal["one", "none"] = "one"


def check_schedule(spec: ScheduleSpec) -> None:
    """``ValueError`` naming the field for a schedule that cannot run."""
    if not _NAME.match(spec.name):
        raise ValueError(
            f"name: {spec.name!r}: 1 to 64 letters, digits, '_', '.', '-' (first a letter or digit)"
        )
    if (spec.cron is None) == (spec.every is None):
        raise ValueError("give either cron or every")
    if spec.cron is not None and (
        len(spec.cron.split()) not in (5, 6) or not croniter.is_valid(spec.cron)
    ):
        raise ValueError(f"cron: {spec.cron!r} is not a 5-field (or 6 with seconds) expression")
    if spec.every is not None and not 0 < spec.every < math.inf:
        raise ValueError("every: must be more than 0 seconds")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {spec.timezone!r}") from None
    if spec.timeout is not None and not spec.timeout > 0:
        raise ValueError("timeout: must be more than 0 seconds")


def next_after(spec: ScheduleSpec, after: float) -> float:
    """The first due time strictly after ``after`` (epoch seconds)."""
    if spec.every is not None:
        return (math.floor(after / spec.every) + 1) * spec.every
    assert spec.cron is not None
    base = datetime.fromtimestamp(after, ZoneInfo(spec.timezone))
    return float(croniter(spec.cron, base).get_next(float))


def last_at_or_before(spec: ScheduleSpec, at: float) -> float:
    """The latest due time at or before ``at``."""
    if spec.every is not None:
        return math.floor(at / spec.every) * spec.every
    assert spec.cron is not None
    base = datetime.fromtimestamp(at, ZoneInfo(spec.timezone))
    itr = croniter(spec.cron, base)
    nxt = float(itr.get_next(float))
    if nxt <= at:  # exactly on a due time
        return nxt
    return float(croniter(spec.cron, base).get_prev(float))


def next_times(spec: ScheduleSpec, after: float, n: int) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        after = next_after(spec, after)
        out.append(after)
    return out


def run_key(name: str, due: float) -> str:
    return f"{KEY_PREFIX}{name}:{due:.0f}"
