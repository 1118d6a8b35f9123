"""Configuration: typed sections, loaded with precedence defaults < file < env < CLI.

Every section is a frozen ``msgspec.Struct`` with ``forbid_unknown_fields``; a bad value
raises :class:`ConfigError` whose message is one line naming the source and the key. Here:
the sections' types and defaults, and loading them in order; the rules a value must follow
beyond its type (ranges, keys that depend on each other) are :mod:`.config_checks`.
Durations are seconds (int or float) or strings such as ``"250ms"``, ``"30s"``, ``"5m"``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from .config_checks import check_config
from .config_sources import (
    ENV_PREFIX,
    ConfigError,
    env_overrides,
    printable,
    read_file,
    undecodable,
)
from .config_types import TypeSettings, normalise_types
from .core.schedule_rules import ScheduleSpec

__all__ = ["ENV_PREFIX", "ConfigError", "env_overrides", "read_file", "undecodable"]

DEFAULT_CONFIG_NAME = "config.toml"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``"300ms"``, ``"30s"``, ``"5m"``, ``"1h"``.

    Raises ``ValueError`` for anything else, including negative values.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f'invalid duration {value!r} (use e.g. 30, "250ms", "30s", "5m")')
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"duration must be a finite number >= 0, got {value!r}")
    return seconds


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    mode: Literal["debug", "release"] = "debug"
    auth_token: str = ""
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    """Host names the API answers without a token besides localhost and loopback addresses
    (a DNS-rebinding guard; see ``workerpool_tui/server/access.py``)."""
    max_body_bytes: int = 1_048_576
    max_connections: int = 1000
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    """The event loop of ``serve`` (see ``workerpool_tui/eventloop.py``)."""


class WorkerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    min_workers: int = 5
    max_workers: int = 50
    enable_auto_scaling: bool = True
    scale_up_threshold: float = 0.8
    scale_down_threshold: float = 0.3
    scale_check_interval: float = 30.0
    shutdown_timeout: float = 30.0
    processes: int = 0
    """Worker processes for ``isolation = "process"`` types; 0: the CPU count."""
    max_tasks_per_process: int = 1000
    process_memory_limit: str = ""
    """``"512MB"``: a process past it after a task is replaced; past twice it, killed."""
    kill_grace: float = 2.0


class TaskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    queue_capacity: int = 1000
    max_concurrent_tasks: int = 100
    default_task_timeout: float = 300.0
    max_task_timeout: float = 86400.0
    """The longest ``timeout`` a submission may ask for (client-controlled work is bounded)."""
    cleanup_completed_tasks_after: float = 3600.0
    keep_failed_for: float = 86400.0
    max_tracked_tasks: int = 100_000
    default_max_retries: int = 0
    retry_backoff: float = 1.0
    allow_shell: bool = False
    handlers: dict[str, str] = msgspec.field(default_factory=dict)
    types: dict[str, TypeSettings] = msgspec.field(default_factory=dict)
    """``[task.types.NAME]``: per-type isolation, limits and defaults (``config_types.py``)."""


class StoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    path: str = "auto"
    recover_running: Literal["requeue", "fail"] = "requeue"
    sync: Literal["normal", "full", "off"] = "normal"
    url: str = ""
    """``postgresql://...``: the cluster store (``path`` is then ignored)."""
    schema: str = "workerpool"
    lease: float = 30.0
    heartbeat: float = 5.0
    instance_name: str = ""
    """This instance's name in the cluster; empty: ``host:pid``."""


class LoggerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error", "critical"] = "debug"
    format: Literal["console", "json"] = "console"
    output: str = "stdout"


class MetricsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    public: bool = False
    """``GET /metrics`` without the token (when ``server.auth_token`` is set)."""


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    worker: WorkerConfig = msgspec.field(default_factory=WorkerConfig)
    task: TaskConfig = msgspec.field(default_factory=TaskConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    logger: LoggerConfig = msgspec.field(default_factory=LoggerConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    keymap: dict[str, str] = msgspec.field(default_factory=dict)
    schedule: list[ScheduleSpec] = msgspec.field(default_factory=list)
    """``[[schedule]]`` tables: recurring tasks (``docs/scheduling.md``)."""
    source: str = "defaults"
    """Where the file part came from (a path, or "defaults"); used in messages."""


_DURATION_KEYS: dict[str, frozenset[str]] = {
    "server": frozenset({"header_timeout", "keep_alive_timeout"}),
    "worker": frozenset({"scale_check_interval", "shutdown_timeout", "kill_grace"}),
    "store": frozenset({"lease", "heartbeat"}),
    "task": frozenset(
        {
            "default_task_timeout",
            "max_task_timeout",
            "cleanup_completed_tasks_after",
            "keep_failed_for",
            "retry_backoff",
        }
    ),
}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _normalise(tree: dict[str, Any], origin: str) -> dict[str, Any]:
    """Turn duration strings into seconds, naming the key on error."""
    for section, keys in _DURATION_KEYS.items():
        values = tree.get(section)
        if not isinstance(values, dict):
            continue
        for key in keys & values.keys():
            try:
                values[key] = parse_duration(values[key])
            except ValueError as exc:
                raise ConfigError(f"{origin}: {section}.{key}: {exc}") from None
    schedules = tree.get("schedule")
    if isinstance(schedules, list):
        for i, table in enumerate(schedules):
            if not isinstance(table, dict):
                continue
            for key in ("every", "timeout"):
                if isinstance(table.get(key), str):
                    try:
                        table[key] = parse_duration(table[key])
                    except ValueError as exc:
                        raise ConfigError(f"{origin}: schedule[{i}].{key}: {exc}") from None
    task = tree.get("task")
    if isinstance(task, dict):
        problem = normalise_types(task.get("types"), parse_duration)
        if problem is not None:
            raise ConfigError(f"{origin}: task.types.{problem}")
    return tree


def _check_text(tree: Mapping[str, Any], origin: str, where: str = "") -> None:
    """Refuse strings holding undecodable bytes (from the command line), naming the key."""
    for key, value in tree.items():
        dotted = f"{where}.{key}" if where else str(key)
        if isinstance(value, Mapping):
            _check_text(value, origin, dotted)
            continue
        values = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(v, str) and undecodable(v) for v in values):
            raise ConfigError(f"{origin}: {printable(dotted)}: not valid UTF-8 text")


def _msgspec_error(exc: msgspec.ValidationError, origin: str) -> ConfigError:
    text = str(exc)
    # msgspec says "Expected `int`, got `str` - at `$.worker.min_workers`"
    match = re.match(r"^(.*?)(?: - at `\$\.?(.*)`)?$", text)
    if match and match.group(2):
        why, where = match.group(1), match.group(2)
        why = why.replace("Object contains unknown field", "unknown key")
        unknown = re.match(r"unknown key `(.+)`", why)
        if unknown:
            return ConfigError(f"{origin}: {where}.{unknown.group(1)}: unknown key")
        return ConfigError(f"{origin}: {where}: {why[0].lower() + why[1:]}")
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        return ConfigError(f"{origin}: {unknown.group(1)}: unknown key")
    return ConfigError(f"{origin}: {text}")


def _convert(tree: dict[str, Any], origin: str) -> Config:
    if "source" in tree:  # set by the loader, not a user key
        raise ConfigError(f"{origin}: source: unknown key")
    _check_text(tree, origin)
    try:
        cfg = msgspec.convert(_normalise(tree, origin), Config)
    except msgspec.ValidationError as exc:
        raise _msgspec_error(exc, origin) from None
    check_config(cfg, origin)
    return cfg


def load_config(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Load configuration with precedence defaults < file < environment < ``overrides``.

    ``path=None`` uses ``./config.toml`` when present, else the built-in defaults.
    ``overrides`` is a nested mapping from the command line (``{"server": {"port": 9000}}``).
    """
    environ = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is None:
        candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
        if candidate.is_file():
            path = candidate
    if path is not None:
        source = printable(str(path))
        tree = read_file(Path(path))
        if not isinstance(tree, dict):  # pragma: no cover - tomllib always gives a dict
            raise ConfigError(f"{source}: expected a table")
        # Validate the file alone first so its errors name the file, not the environment.
        _convert(_merge({}, tree), source)
    env_tree = env_overrides(environ)
    if env_tree:
        tree = _merge(tree, env_tree)
        _convert(
            _merge({}, tree),
            "environment (WORKERPOOL__*)" if source == "defaults" else f"{source} + environment",
        )
    if overrides:
        tree = _merge(tree, overrides)
    cfg = _convert(tree, "command line" if overrides else source)
    return msgspec.structs.replace(cfg, source=source)


def default_config() -> Config:
    """The built-in defaults (what ``config.toml`` at the top of the repository documents)."""
    return Config()


def store_path(cfg: StoreConfig, environ: Mapping[str, str] | None = None) -> Path | None:
    """Where the task store lives: ``None`` for memory only."""
    environ = os.environ if environ is None else environ
    if cfg.path == "":
        return None
    if cfg.path != "auto":
        return Path(cfg.path).expanduser()
    base = environ.get("XDG_DATA_HOME") or str(
        Path(environ.get("HOME", "~")).expanduser() / ".local/share"
    )
    return Path(base) / "workerpool-tui" / "tasks.db"
