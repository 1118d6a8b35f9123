"""Times a submission carries: ``delay`` and ``run_at`` as the engine's epoch seconds."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

from ..config import parse_duration


class _Timed(Protocol):
    @property
    def delay(self) -> float | str | None: ...

    @property
    def run_at(self) -> datetime | None: ...


def submitted_run_at(req: _Timed, now: float) -> float | None:
    """``run_at`` (RFC 3339, with a zone) or ``now + delay``; ``ValueError`` naming the
    field for a bad value or for both at once."""
    if req.delay is not None and req.run_at is not None:
        raise ValueError("delay and run_at: give one of them, not both")
    if req.delay is not None:
        try:
            delay = parse_duration(req.delay)
        except ValueError as exc:
            raise ValueError(f"delay: {exc}") from None
        if not math.isfinite(delay):
            raise ValueError("delay: not a duration")
        return now + delay if delay > 0 else None
    if req.run_at is not None:
        if req.run_at.tzinfo is None:
            raise ValueError("run_at: an RFC 3339 time with a zone (Z or +hh:mm)")
        return req.run_at.timestamp()
    return None
