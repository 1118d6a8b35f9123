"""``shell_task``: run a command in its own process group; cancel kills the whole group.

Only registered when ``task.allow_shell = true``. ``{"argv": [...]}`` runs without a shell;
``{"command": "..."}`` runs through ``/bin/sh -c``. The result keeps the last
:data:`TAIL_BYTES` of each stream; a non-zero exit fails the task with those tails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections import deque
from typing import Any

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, Process

from . import wholenum
from .handlers import TaskContext, TaskType, task_type

TAIL_BYTES = 4096
KILL_GRACE_S = 2.0


class ShellPayload(msgspec.Struct, forbid_unknown_fields=True):
    argv: list[str] | None = None
    command: str | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.command is None):
            raise ValueError("give exactly one of `argv` (a list) or `command` (a string)")
        if self.argv is not None and not self.argv:
            raise ValueError("`argv` must not be empty")


class ShellFailed(Exception):
    """The command exited non-zero."""


class _Tail:
    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= TAIL_BYTES:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks)[-TAIL_BYTES:].decode("utf-8", "replace")


async def _drain(stream: ByteReceiveStream | None, tail: _Tail, ctx: TaskContext | None) -> None:
    if stream is None:
        return
    pending = b""
    async for chunk in stream:
        tail.add(chunk)
        if ctx is not None:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > TAIL_BYTES:
                # A line without an end (binary output): log it in bounded pieces, or the
                # buffer would grow with the output and each split would rescan all of it.
                lines.append(pending[:TAIL_BYTES])
                pending = b""
            for line in lines[-20:]:
                ctx.log(line.decode("utf-8", "replace"))


def _kill_group(proc: Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


async def shell_task(ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs a command (`argv` list or shell `command`) in its own process group."""
    p = wholenum.convert(payload, ShellPayload)
    cmd: list[str] = p.argv if p.argv is not None else ["/bin/sh", "-c", p.command or ""]
    env = {**os.environ, **p.env} if p.env else None
    out, err = _Tail(), _Tail()
    # Shielded: a cancel that lands while the process is being set up would otherwise let
    # asyncio kill only the leader, leaving the rest of its group running. Once started,
    # a pending cancel arrives at the first await below and the group goes in ``finally``.
    with anyio.CancelScope(shield=True):
        proc = await anyio.open_process(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=p.cwd,
            env=env,
            start_new_session=True,
        )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, proc.stdout, out, ctx)
            tg.start_soon(_drain, proc.stderr, err, None)
            code = await proc.wait()
            # Whatever the command left in its group would hold the pipes open.
            _kill_group(proc, signal.SIGKILL)
    finally:
        # Cancel, timeout or an error: the whole group goes, TERM first, then KILL.
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:
                _kill_group(proc, signal.SIGTERM)
                with anyio.move_on_after(KILL_GRACE_S):
                    await proc.wait()
            # Children of the command may outlive it; the group goes with it either way.
            _kill_group(proc, signal.SIGKILL)
            if proc.returncode is None:
                await proc.wait()
            await proc.aclose()
    result: dict[str, Any] = {
        "exit_code": code,
        "stdout_tail": out.text(),
        "stderr_tail": err.text(),
    }
    if code != 0:
        failure = ShellFailed(
            f"exit code {code}; stderr: {result['stderr_tail'][-500:].strip() or '(empty)'}"
        )
        failure.task_result = result  # type: ignore[attr-defined]  # kept as the task's result
        raise failure
    return result


def shell_task_type() -> TaskType:
    return task_type("shell_task", shell_task, payload_type=ShellPayload)
