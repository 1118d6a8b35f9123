"""Logging per ``[logger]``: Rich console lines or JSON lines, to stdout, stderr or a file.

The dashboard never lets records reach the terminal under it: it installs a
:class:`RecordBuffer` (bounded) and shows its lines in the log panel; a file output, if
configured, keeps receiving records too.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import msgspec

from .config import ConfigError, LoggerConfig

LOGGER_NAME = "workerpool_tui"
log = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(doc).decode()


class RecordBuffer(logging.Handler):
    """Keeps the last ``maxlen`` formatted records and tells a listener about new ones."""

    def __init__(self, maxlen: int = 2000) -> None:
        super().__init__()
        self.lines: deque[tuple[str, str]] = deque(maxlen=maxlen)
        self.listener: Callable[[str, str], None] | None = None
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (record.levelname.lower(), self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
            return
        self.lines.append(line)
        if self.listener is not None:
            self.listener(*line)


def _stream(output: str) -> IO[str]:
    if output == "stdout":
        return sys.stdout
    if output == "stderr":
        return sys.stderr
    path = Path(output).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise ConfigError(f"logger.output: cannot open {output}: {exc.strerror}") from None


def setup_logging(cfg: LoggerConfig, *, dashboard: bool = False) -> RecordBuffer | None:
    """Configure the ``workerpool_tui`` logger. With ``dashboard``, terminal outputs are
    replaced by a :class:`RecordBuffer` (returned); a file output stays."""
    root = logging.getLogger(LOGGER_NAME)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(cfg.level.upper())
    root.propagate = False
    buffer: RecordBuffer | None = None
    if dashboard:
        buffer = RecordBuffer()
        root.addHandler(buffer)
    if not dashboard or cfg.output not in ("stdout", "stderr"):
        stream = _stream(cfg.output)
        handler: logging.Handler
        if cfg.format == "json":
            handler = logging.StreamHandler(stream)
            handler.setFormatter(JsonFormatter())
        elif cfg.output in ("stdout", "stderr"):
            from rich.console import Console
            from rich.logging import RichHandler

            handler = RichHandler(
                console=Console(file=stream),
                show_path=False,
                rich_tracebacks=False,
                log_time_format="%H:%M:%S",
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
        else:
            handler = logging.StreamHandler(stream)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
            )
        root.addHandler(handler)
    return buffer
