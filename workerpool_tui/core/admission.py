"""What a submission may hold: the documented range of every field, checked at admission.

Every store (memory, SQLite, PostgreSQL) holds exactly what these rules admit, so a task
that was accepted is stored and run as it was sent, and a value no store could hold is
refused up front (``InvalidRequest`` naming the field) instead of failing later, far from
the client, in a background writer. The API's request structs carry the same bounds (and
so does its OpenAPI document); the engine checks them again for every other caller.

The rules (also in ``docs/api.md``):

- ``priority``: an integer within ``[-2**31, 2**31 - 1]``.
- ``max_retries``: an integer within ``[0, 100]``.
- ``timeout``: more than 0 seconds and at most ``task.max_task_timeout`` (default 24 h).
- ``payload``: a JSON object nested at most :data:`PAYLOAD_MAX_DEPTH` levels deep (the
  object itself is level 1), whose integers fit in a signed 64-bit integer and whose keys
  are strings. (JSON itself cannot carry NaN or infinities; a Python caller's float must be
  finite too, and its values JSON ones: dict, list, str, int, float, bool, None.)
"""

from __future__ import annotations

import math
from typing import Any

from ..config import TaskConfig
from .errors import InvalidRequest, UnknownTaskType
from .handlers import TypeRegistry
from .models import Task, TaskSpec

PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
MAX_RETRIES_MAX = 100
PAYLOAD_MAX_DEPTH = 64
"""Objects and arrays inside one another, the payload object itself included."""
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


def check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: {value} is outside the allowed range [{low}, {high}]")


def check_timeout(value: float, maximum: float) -> None:
    if not 0 < value <= maximum:
        raise InvalidRequest(
            f"timeout: must be more than 0 and at most {maximum:g} seconds"
            f" (task.max_task_timeout), got {value:g}"
        )


def check_payload(payload: Any) -> None:
    """Refuse a payload no store could hold exactly as sent (see the module docstring)."""
    if not isinstance(payload, dict):
        raise InvalidRequest(f"payload: expected a JSON object, got {type(payload).__name__}")
    _check_value(payload, "payload", 1)


def _plain(item: Any) -> bool:
    """A scalar that passes as it is: the common case, checked without building its path
    (anything else, an error included, goes through :func:`_check_value`)."""
    t = type(item)
    if t is str or t is bool or item is None:
        return True
    if t is int:
        n: int = item
        return INT_MIN <= n <= INT_MAX
    return t is float and math.isfinite(item)


def _check_value(value: Any, path: str, depth: int) -> None:
    # Iterative over siblings, recursive over depth: depth is capped at PAYLOAD_MAX_DEPTH,
    # so the recursion is too.
    if isinstance(value, (dict, list)) and depth > PAYLOAD_MAX_DEPTH:
        raise InvalidRequest(
            f"{path}: nested deeper than {PAYLOAD_MAX_DEPTH} levels (the payload limit)"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(f"{path}: keys must be strings, got {type(key).__name__}")
            if not _plain(item):
                _check_value(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not _plain(item):
                _check_value(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise InvalidRequest(
                f"{path}: integer {value} does not fit in 64 bits"
                f" (payload integers must be within [{INT_MIN}, {INT_MAX}])"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{path}: {value} is not a JSON number")
    elif value is not None and not isinstance(value, str):
        # Only a Python caller can get here (the API decodes JSON): a set, bytes, an
        # object... would be stored as something else than what was submitted.
        raise InvalidRequest(f"{path}: {type(value).__name__} is not a JSON value")


def check_spec(spec: TaskSpec, types: TypeRegistry, max_task_timeout: float) -> None:
    """Every rule above for one submission, and its type's own payload check."""
    tt = types.get(spec.type)
    if tt is None:
        if spec.type == "shell_task":
            raise UnknownTaskType(
                "task type 'shell_task' is disabled; set task.allow_shell = true to enable it"
            )
        known = ", ".join(types.names())
        raise UnknownTaskType(f"unknown task type {spec.type!r} (known: {known})")
    if spec.priority is not None:
        check_int("priority", spec.priority, PRIORITY_MIN, PRIORITY_MAX)
    if spec.timeout_s is not None:
        check_timeout(spec.timeout_s, max_task_timeout)
    if spec.max_retries is not None:
        check_int("max_retries", spec.max_retries, 0, MAX_RETRIES_MAX)
    check_payload(spec.payload)
    if tt.payload_type is not None:
        try:
            tt.check_payload(spec.payload)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None


def new_task(spec: TaskSpec, cfg: TaskConfig, task_id: str, seq: int, now: float) -> Task:
    """The task an admitted ``spec`` becomes: what it leaves out comes from its type's
    ``[task.types.NAME]``, then from ``[task]``."""
    ts = cfg.types.get(spec.type)
    priority, max_retries, timeout_s = spec.priority, spec.max_retries, spec.timeout_s
    if ts is not None:
        priority = ts.priority if priority is None else priority
        max_retries = ts.max_retries if max_retries is None else max_retries
        timeout_s = ts.timeout if timeout_s is None else timeout_s
    return Task(
        id=task_id,
        type=spec.type,
        payload=spec.payload,
        priority=0 if priority is None else priority,
        max_retries=cfg.default_max_retries if max_retries is None else max_retries,
        timeout_s=cfg.default_task_timeout if timeout_s is None else timeout_s,
        created_at=now,
        seq=seq,
        retry_of=spec.retry_of,
        run_at=spec.run_at if spec.run_at is not None and spec.run_at > now else None,
        unique_key=spec.unique_key,
        unique_until=None if spec.unique_for is None else now + spec.unique_for,
    )
