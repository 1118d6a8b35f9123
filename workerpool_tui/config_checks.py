"""The rules a configuration's values must follow beyond their types: ranges, keys that
depend on each other (``min_workers`` <= ``max_workers``), the schedules, the handlers and
the store. :mod:`.config` checks every source it loads with :func:`check_config`, so an
error names the file, the environment or the command line that brought the bad value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .config_sources import ConfigError
from .config_types import parse_bytes, type_settings_problem
from .core.schedule_rules import check_schedule

if TYPE_CHECKING:
    from .config import Config

MAX_RETRIES_MAX = 100
"""The most retries a task may have (the engine's admission rule, ``core/admission.py``;
kept here so that loading the configuration never imports the engine)."""

_NON_NEGATIVE: dict[str, tuple[str, ...]] = {
    "server": ("port", "max_body_bytes", "max_connections"),
    "worker": ("min_workers", "max_workers", "processes"),
    "task": ("queue_capacity", "max_concurrent_tasks", "max_tracked_tasks", "default_max_retries"),
}
_POSITIVE: dict[str, tuple[str, ...]] = {
    "server": ("max_body_bytes", "max_connections", "header_timeout", "keep_alive_timeout"),
    "worker": ("max_workers", "scale_check_interval", "max_tasks_per_process"),
    "task": (
        "queue_capacity",
        "max_concurrent_tasks",
        "max_tracked_tasks",
        "default_task_timeout",
        "max_task_timeout",
    ),
}


_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))
"""What ``server.auth_token`` may hold: visible ASCII, the characters every HTTP client
(and a browser's ``fetch``) can send in ``Authorization: Bearer <token>``."""


def check_config(cfg: Config, origin: str) -> None:
    """:class:`ConfigError` naming ``origin`` and the key, for the first rule ``cfg`` breaks."""

    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{origin}: {key}: {why}")

    for section, keys in _NON_NEGATIVE.items():
        for key in keys:
            if getattr(getattr(cfg, section), key) < 0:
                fail(f"{section}.{key}", "must not be negative")
    for section, keys in _POSITIVE.items():
        for key in keys:
            if getattr(getattr(cfg, section), key) <= 0:
                fail(f"{section}.{key}", "must be greater than 0")
    if not 0 <= cfg.server.port <= 65535:
        fail("server.port", f"must be within 0..65535, got {cfg.server.port}")
    if not set(cfg.server.auth_token) <= _TOKEN_CHARS:
        fail("server.auth_token", "must be visible ASCII characters, with no spaces")
    w = cfg.worker
    if w.min_workers > w.max_workers:
        fail(
            "worker.min_workers",
            f"{w.min_workers} is greater than worker.max_workers ({w.max_workers})",
        )
    for key in ("scale_up_threshold", "scale_down_threshold"):
        value = getattr(w, key)
        if not 0 < value <= 1:
            fail(f"worker.{key}", f"must be within (0, 1], got {value}")
    if w.scale_down_threshold >= w.scale_up_threshold:
        fail(
            "worker.scale_down_threshold",
            f"{w.scale_down_threshold} must be below"
            f" worker.scale_up_threshold ({w.scale_up_threshold})",
        )
    try:
        parse_bytes(w.process_memory_limit)
    except ValueError as exc:
        fail("worker.process_memory_limit", str(exc))
    t = cfg.task
    if t.default_max_retries > MAX_RETRIES_MAX:
        fail(
            "task.default_max_retries",
            f"must be at most {MAX_RETRIES_MAX} (a task's limit), got {t.default_max_retries}",
        )
    if t.max_tracked_tasks <= t.queue_capacity + t.max_concurrent_tasks:
        fail(
            "task.max_tracked_tasks",
            f"{t.max_tracked_tasks} must exceed task.queue_capacity + task.max_concurrent_tasks"
            f" ({t.queue_capacity + t.max_concurrent_tasks})",
        )
    if t.default_task_timeout > t.max_task_timeout:
        fail(
            "task.default_task_timeout",
            f"{t.default_task_timeout:g}s exceeds task.max_task_timeout ({t.max_task_timeout:g}s)",
        )
    names: set[str] = set()
    for i, sched in enumerate(cfg.schedule):
        try:
            check_schedule(sched)
        except ValueError as exc:
            fail(f"schedule[{i}]", str(exc))
        if sched.name in names:
            fail(f"schedule[{i}].name", f"{sched.name!r} is used twice")
        names.add(sched.name)
    for name, ts in t.types.items():
        problem = type_settings_problem(
            ts, max_task_timeout=t.max_task_timeout, max_retries_max=MAX_RETRIES_MAX
        )
        if problem is not None:
            fail(f"task.types.{name}.{problem[0]}", problem[1])
    for name, target in t.handlers.items():
        if ":" not in target:
            fail(f"task.handlers.{name}", f"expected 'package.module:function', got {target!r}")
    st = cfg.store
    if st.url:
        if not st.url.startswith(("postgresql://", "postgres://")):
            fail("store.url", "expected a postgresql://user@host/database URL")
        if not re.match(r"^[a-z_][a-z0-9_]{0,39}$", st.schema):
            fail(
                "store.schema",
                f"{st.schema!r}: lower-case letters, digits and _, at most 40 characters,"
                " not starting with a digit",
            )
        if st.heartbeat <= 0:
            fail("store.heartbeat", "must be greater than 0")
        if st.lease < 2 * st.heartbeat:
            fail(
                "store.lease",
                f"{st.lease:g}s must be at least twice store.heartbeat ({st.heartbeat:g}s)",
            )
    elif st.path not in ("", "auto") and Path(st.path).is_dir():
        fail("store.path", f"{st.path} is a directory")
