"""Per-type settings: the ``[task.types.NAME]`` tables of the configuration (SPEC §12).

Kept apart from :mod:`.config` (which loads and checks every section) because these
settings are read by the engine's gates (``core/typelimits.py``) and by admission, and
their parsing (``rate_limit = "100/s"``) has rules of its own.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_RATE_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


class TypeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[task.types.NAME]``: how one task type runs. Unset fields use ``[task]``."""

    isolation: Literal["thread", "process"] = "thread"
    concurrency: int = 0
    """At most this many of the type's tasks run at once here (0: no cap)."""
    rate_limit: str = ""
    """Starts spaced to at most ``N/s``, ``N/m`` or ``N/h`` (empty: no limit)."""
    timeout: float | None = None
    max_retries: int | None = None
    priority: int | None = None
    paused: bool = False


def parse_rate(text: str) -> float:
    """Seconds between two starts for ``"100/s"``, ``"30/m"``, ``"2/h"``; 0 for ``""``.

    Raises ``ValueError`` for anything else (a rate of 0 included).
    """
    if text.strip() == "":
        return 0.0
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError(f'invalid rate {text!r} (use e.g. "100/s", "30/m", "2/h")')
    count = float(match.group(1))
    if count <= 0:
        raise ValueError(f"a rate must be more than 0 per unit, got {text!r}")
    return _RATE_UNIT_S[match.group(2)] / count


def normalise_types(types: Any, parse_duration: Any) -> str | None:
    """Turn each type's ``timeout`` string into seconds in place, and check each table's
    keys and types (msgspec would name a dict's entry ``types[...]``): the failing key's
    message (``"NAME.key: why"``) or ``None``."""
    if not isinstance(types, dict):
        return None
    for name, table in types.items():
        if not isinstance(table, dict):
            return f"{name}: expected a table, got {type(table).__name__}"
        if "timeout" in table:
            try:
                table["timeout"] = parse_duration(table["timeout"])
            except ValueError as exc:
                return f"{name}.timeout: {exc}"
        try:
            msgspec.convert(table, TypeSettings)
        except msgspec.ValidationError as exc:
            text = str(exc)
            unknown = re.match(r"Object contains unknown field `(.+)`", text)
            if unknown:
                return f"{name}.{unknown.group(1)}: unknown key"
            where = re.match(r"^(.*?) - at `\$\.(.+)`$", text)
            if where:
                why = where.group(1)
                return f"{name}.{where.group(2)}: {why[0].lower()}{why[1:]}"
            return f"{name}: {text}"
    return None


def type_settings_problem(
    ts: TypeSettings, *, max_task_timeout: float, max_retries_max: int
) -> tuple[str, str] | None:
    """Why ``ts`` cannot be used: ``(key, why)`` with the key within the table, or ``None``."""
    if ts.concurrency < 0:
        return "concurrency", f"must not be negative (0: no cap), got {ts.concurrency}"
    try:
        parse_rate(ts.rate_limit)
    except ValueError as exc:
        return "rate_limit", str(exc)
    if ts.timeout is not None and not 0 < ts.timeout <= max_task_timeout:
        return "timeout", (
            f"must be more than 0 and at most task.max_task_timeout"
            f" ({max_task_timeout:g}s), got {ts.timeout:g}"
        )
    if ts.max_retries is not None and not 0 <= ts.max_retries <= max_retries_max:
        return "max_retries", f"must be within [0, {max_retries_max}], got {ts.max_retries}"
    if ts.priority is not None and not PRIORITY_MIN <= ts.priority <= PRIORITY_MAX:
        return "priority", f"must be within [{PRIORITY_MIN}, {PRIORITY_MAX}], got {ts.priority}"
    return None


_BYTES_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_BYTE_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def parse_bytes(text: str) -> int:
    """Bytes from ``"512MB"``, ``"1.5GiB"``, ``"4096"``; 0 for ``""`` (no limit).

    Raises ``ValueError`` for anything else.
    """
    if text.strip() == "":
        return 0
    match = _BYTES_RE.match(text)
    if match is None:
        raise ValueError(f'invalid size {text!r} (use e.g. "512MB", "2GiB")')
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _BYTE_UNITS[unit])
