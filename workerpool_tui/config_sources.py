"""Where configuration comes from, as text: the TOML file's bytes and the environment.

Both are checked as text before anything reads them as settings. A file must be UTF-8 (a
UTF-8 byte-order mark is skipped; a UTF-16 or UTF-32 one, or any byte that is not UTF-8,
is one line naming the byte). Environment values and command-line arguments reach Python
with undecodable bytes turned into lone surrogates (``surrogateescape``); such a value
could not be used (a token cannot be sent, a host cannot be resolved), so it is refused,
naming the variable.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "WORKERPOOL__"


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the user."""


def _set_path(tree: dict[str, Any], dotted: list[str], value: object) -> None:
    node = tree
    for part in dotted[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(dotted)}: {part} is not a table")
        node = child
    node[dotted[-1]] = value


def _env_value(raw: str) -> object:
    """An environment value as TOML would read it (numbers, booleans, arrays), else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8: Python hands such bytes of the
    environment and the command line over as lone surrogates (``surrogateescape``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(text: str) -> str:
    """``text`` for a message: undecodable bytes shown as ``\\xff``, never raising."""
    return text.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``WORKERPOOL__SECTION__KEY=value`` variables as a nested mapping."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        if undecodable(name) or undecodable(raw):
            raise ConfigError(
                f"environment {printable(name)}: not valid UTF-8 text"
                " (the variable holds bytes that are not UTF-8)"
            )
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if len(parts) < 2:
            raise ConfigError(f"environment {name}: expected {ENV_PREFIX}SECTION__KEY")
        _set_path(tree, parts, _env_value(raw))
    return tree


_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
"""Byte-order marks of encodings TOML does not allow (UTF-32 first: its little-endian
mark starts like UTF-16's)."""


def decode_toml_text(data: bytes, name: str) -> str:
    """The text of a TOML file, which must be UTF-8 (a UTF-8 byte-order mark is skipped)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise ConfigError(
                f"{name}: starts with a {encoding} byte-order mark"
                f" ({' '.join(f'0x{b:02x}' for b in bom)}); TOML must be saved as UTF-8"
            )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{name}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}"
            f" (offset {exc.start}); TOML must be saved as UTF-8"
        ) from None


def read_file(path: Path) -> dict[str, Any]:
    """The TOML file as a mapping; a missing, unreadable or malformed file is a
    ``ConfigError`` (one line naming the file)."""
    name = printable(str(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(decode_toml_text(data, name))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: invalid TOML: {exc}") from None
