"""What crosses the pipe between the engine and a worker process: msgspec structs in
MessagePack, each frame a 4-byte big-endian length and its body.

Parent to child: :class:`Run` (one task). Cancellation is a signal (``SIGUSR1``), not a
message: it must reach a handler that never reads the pipe. Child to parent:
:class:`Ready` once, then for each task any number of :class:`Progress` and :class:`Log`
and one end: :class:`Done`, :class:`Failed` or :class:`Interrupted`, each with the child's
resident memory after the task when :class:`Run` asked for it (``process_memory_limit``; 0
otherwise).
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
"""A frame longer than this is a broken peer, not a message."""


class Run(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    task_id: str
    target: str
    """``package.module:function``: what the child imports and calls."""
    payload: dict[str, Any]
    attempt: int
    rss: bool = False
    """Send the resident memory after the task (only ``process_memory_limit`` needs it:
    reading ``/proc`` on every task costs the child more than the rest of the round trip)."""
    parents: dict[str, Any] | None = None
    """``ctx.parent_results`` for a task with ``depends_on`` (``None``: it has none)."""


class Ready(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    pid: int


class Progress(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    pct: float
    message: str | None


class Log(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    line: str


class Done(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    result: bytes | None
    """The result as JSON (encoded in the child, so a result JSON cannot hold fails there)."""
    rss: int


class Failed(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    type: str
    message: str
    traceback: str
    rss: int
    result: bytes | None = None


class Interrupted(msgspec.Struct, frozen=True, tag=True, tag_field="kind"):
    """The handler stopped after the cancel signal."""

    rss: int


ToChild = Run
FromChild = Ready | Progress | Log | Done | Failed | Interrupted

_encode = msgspec.msgpack.Encoder().encode
decode_to_child = msgspec.msgpack.Decoder(ToChild).decode
decode_from_child = msgspec.msgpack.Decoder(FromChild).decode


def frame(message: Run | Ready | Progress | Log | Done | Failed | Interrupted) -> bytes:
    body = _encode(message)
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Frames out of a byte stream fed in pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while len(buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(buf)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes")
            end = HEADER.size + size
            if len(buf) < end:
                break
            out.append(bytes(buf[HEADER.size : end]))
            del buf[:end]
        return out


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (Linux ``/proc``); 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _page_size() -> int:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 4096


_PAGE = _page_size()
