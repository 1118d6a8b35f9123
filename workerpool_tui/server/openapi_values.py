"""The JSON Schemas of values whose bounds depend on the server's configuration, for the
OpenAPI document: a duration string up to ``task.max_task_timeout``, a payload value (JSON
whose integers fit in 64 bits), the ``status`` filter of a listing.

A JSON Schema ``pattern`` cannot compare numbers, so a duration's bound is spelled out as a
regular expression over its digits, per unit (``_at_most``). It never admits what
:func:`workerpool_tui.config.parse_duration` would refuse, and it admits exactly what that
takes (more than 0, at most the bound) when the bound is a whole number of every unit, as
the default 24 h is. Otherwise, in each unit, it stops at the whole number below the bound
(with a 90 s bound, "1.5m" is taken but not documented; "90s" is both).
"""

from __future__ import annotations

import math
from typing import Any

from ..core.admission import INT_MAX, INT_MIN
from ..core.models import TaskStatus

SPACE = "[ \\t\\n\\r\\f\\v]*"
"""What ``parse_duration`` skips around a number and its unit (ASCII whitespace)."""
_UNITS = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0))


def _one_to(m: int) -> str:
    """A regular expression for the integers 1..m written without leading zeros."""
    digits = str(m)
    n = len(digits)
    alternatives = [f"[1-9][0-9]{{{length - 1}}}" for length in range(2, n)]
    if n > 1:
        alternatives.insert(0, "[1-9]")
    # n digits, at most m: a prefix of m, then a smaller digit, then anything.
    for i, d in enumerate(digits):
        low = 1 if i == 0 else 0
        high = int(d) - 1
        if high >= low:
            rest = f"[0-9]{{{n - i - 1}}}" if n - i - 1 else ""
            alternatives.append(f"{digits[:i]}[{low}-{high}]{rest}")
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


def _at_most(k: int) -> str | None:
    """A decimal number ``d+(.d+)?`` (leading zeros allowed) more than 0 and at most k."""
    if k < 1:
        return None
    parts = []
    if k >= 2:
        parts.append(f"0*{_one_to(k - 1)}(?:\\.[0-9]+)?")
    parts.append(f"0*{k}(?:\\.0+)?")
    parts.append("0+\\.0*[1-9][0-9]*")
    return "(?:" + "|".join(parts) + ")"


def duration_pattern(maximum_s: float) -> str:
    """A ``pattern`` for duration strings within (0, maximum_s]."""
    forms = []
    for unit, seconds in _UNITS:
        number = _at_most(math.floor(maximum_s / seconds + 1e-9))
        if number is None:
            continue
        suffix = f"(?:{unit})?" if unit == "s" else unit
        forms.append(f"{number}{SPACE}{suffix}")
    return f"^{SPACE}(?:{'|'.join(forms)}){SPACE}$"


def timeout_schema(maximum_s: float) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": maximum_s},
            {"type": "string", "pattern": duration_pattern(maximum_s)},
            {"type": "null"},
        ],
        "description": 'seconds, or a duration string such as "300ms", "30s", "5m", "1h";'
        f" more than 0 and at most {maximum_s:g} s (task.max_task_timeout);"
        " null or absent: task.default_task_timeout",
    }


_DURATION = f"^{SPACE}[0-9]{{1,6}}(?:\\.[0-9]{{1,3}})?{SPACE}(?:ms|s|m|h|d)?{SPACE}$"
"""A duration string (the bound is checked by the engine; a pattern spelling out ten
years digit by digit would be thousands of characters)."""
MAX_DELAY_S = 10 * 366 * 86400.0
"""The longest ``delay`` or ``unique_for`` the document describes (about ten years)."""


def delay_schema() -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": MAX_DELAY_S},
            {"type": "string", "pattern": _DURATION},
            {"type": "null"},
        ],
        "description": "run no sooner than this long from now: seconds, or a duration"
        ' string such as "10m"; not together with run_at (docs/scheduling.md)',
    }


def unique_for_schema() -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DELAY_S},
            {"type": "string", "pattern": _DURATION},
            {"type": "null"},
        ],
        "description": "with unique_key: how long the key stays taken from submission;"
        " null or absent: until the task is final",
    }


JSON_VALUE = "JsonValue"


def json_value_schema() -> dict[str, Any]:
    """Any JSON value whose integers fit in a signed 64-bit integer (``$ref`` itself)."""
    ref = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
    return {
        "description": "any JSON value; integers within [-2^63, 2^63 - 1]; objects and arrays"
        " nested at most 64 levels deep, counting the payload itself",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "string"},
            {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
            {"type": "number"},
            {"type": "array", "items": ref},
            {"type": "object", "additionalProperties": ref},
        ],
    }


def payload_schema(declared: dict[str, Any] | None) -> dict[str, Any]:
    """A task type's payload: its declared schema, whose undeclared fields (if it allows
    any) are JSON values; or any object of JSON values."""
    ref = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
    if declared is None:
        return {"type": "object", "additionalProperties": ref}
    schema = dict(declared)
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = ref
    return schema


def status_filter_pattern() -> str:
    one = "[ \\t]*(?:" + "|".join(s.value for s in TaskStatus) + ")[ \\t]*"
    return f"^(?:{one}(?:,{one})*)?$"
