"""Logging per ``[logger]``: Rich console lines or JSON lines, to stdout, stderr or a file.

Rich's columns (and its wrapping at the terminal's width) are for a terminal only: to a
pipe or a file, ``console`` records are plain lines, one record per line (a message's own
line breaks are written as ``\\n``; a traceback follows its record on indented lines).

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


class LineFormatter(logging.Formatter):
    """``2026-11-28 13:00:01,250 INFO    workerpool_tui.server: message``: one line a record,
    and a traceback, if any, on the indented lines after it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")
        blocks = []
        if record.exc_info:
            blocks.append(self.formatException(record.exc_info))
        elif record.exc_text:
            blocks.append(record.exc_text)
        if record.stack_info:
            blocks.append(self.formatStack(record.stack_info))
        for block in blocks:
            line += "".join("\n  " + part for part in block.splitlines())
        return line


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


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def setup_logging(cfg: LoggerConfig, *, dashboard: bool = False) -> RecordBuffer | None:
    """Configure the ``workerpool_tui`` logger. With ``dashboard``, terminal outputs are
    replaced by a :class:`RecordBuffer` (returned); a file output stays."""
    root = logging.getLogger(LOGGER_NAME)
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
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
        elif cfg.output in ("stdout", "stderr") and _is_terminal(stream):
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
            handler.setFormatter(LineFormatter())
        root.addHandler(handler)
    return buffer
