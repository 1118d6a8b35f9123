"""What every client command gets: its arguments, the API connection, and the consoles;
and the exit statuses (SPEC §11)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import msgspec
from rich.console import Console

from .api import ApiClient, ClientUsageError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

MIN_ID_PREFIX = 4
"""The shortest id prefix the server resolves (the dashboard shows 8 characters)."""


@dataclass
class Context:
    args: argparse.Namespace
    api: ApiClient
    out: Console
    err: Console

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def print_json(self, value: object) -> None:
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
        sys.stdout.flush()


def task_id_arg(value: str) -> str:
    """An ``ID`` argument: a whole id or a prefix of at least :data:`MIN_ID_PREFIX`
    characters (the server resolves it, or answers ``ambiguous_id`` with candidates)."""
    value = value.strip()
    if len(value) < MIN_ID_PREFIX:
        raise ClientUsageError(
            f"ID: {value!r} is too short: give the task id or its first"
            f" {MIN_ID_PREFIX} or more characters"
        )
    return value
