"""A worker process: runs tasks of ``isolation = "process"`` types, one at a time, for its
parent (:mod:`.pool`), over a socket (:mod:`.protocol`).

Run as ``python -m workerpool_tui.core.procpool.child FD PARENT_PID``. It lives in its
own session (the parent starts it so), so a terminal's Ctrl-C reaches only the parent; it
ignores SIGINT besides, and is killed when its parent dies (``PR_SET_PDEATHSIG``, as the
SQLite writer is), so that a ``kill -9`` of the engine leaves no worker behind.

Cancel and timeout arrive as ``SIGUSR1``: the flag behind ``ctx.cancel_requested`` is set
and, while the handler runs, :class:`~workerpool_tui.core.handlers.TaskInterrupted` is
raised where it is (a pure-Python loop, ``time.sleep``); a handler that ignores it, or sits
in a C call, is killed by the parent after ``worker.kill_grace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import inspect
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import msgspec

from ..handlers import TaskInterrupted
from .protocol import (
    Done,
    Failed,
    FrameReader,
    Interrupted,
    Log,
    Progress,
    Ready,
    Run,
    decode_to_child,
    frame,
    rss_bytes,
)

_encode_json = msgspec.json.Encoder().encode


class _State:
    cancelled = False
    interruptible = False
    """The handler runs (not our own code): the signal may raise where it is."""


_state = _State()


def _on_cancel(signum: int, frame_: object) -> None:
    _state.cancelled = True
    if _state.interruptible:
        _state.interruptible = False
        raise TaskInterrupted("cancelled")


class _CancelFlag:
    def is_set(self) -> bool:
        return _state.cancelled

    def __bool__(self) -> bool:
        return _state.cancelled

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not _state.cancelled:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return _state.cancelled


class ChildContext:
    """``ctx`` in a worker process: the same surface as the engine's ``TaskContext``."""

    def __init__(
        self,
        sock: socket.socket,
        task_id: str,
        attempt: int,
        parents: dict[str, Any] | None = None,
    ) -> None:
        self._sock = sock
        self.task_id = task_id
        self.attempt = attempt
        self._parents = parents or {}

    @property
    def parent_results(self) -> dict[str, Any]:
        """The results of this task's parents (``depends_on``), by id (sent with the task)."""
        return self._parents

    @property
    def cancel_requested(self) -> _CancelFlag:
        return _CancelFlag()

    def progress(self, pct: float, message: str | None = None) -> None:
        if _state.cancelled:
            raise TaskInterrupted(self.task_id)
        pct = 0.0 if pct < 0 else 100.0 if pct > 100 else float(pct)
        self._send(frame(Progress(pct, None if message is None else str(message))))

    def log(self, line: str) -> None:
        self._send(frame(Log(str(line))))

    def _send(self, data: bytes) -> None:
        # A signal must not raise half-way through a frame: the pipe would be garbage.
        was = _state.interruptible
        _state.interruptible = False
        try:
            self._sock.sendall(data)
        finally:
            _state.interruptible = was
        if was and _state.cancelled:
            raise TaskInterrupted(self.task_id)


_targets: dict[str, Callable[..., Any]] = {}


def _resolve(target: str) -> Callable[..., Any]:
    fn = _targets.get(target)
    if fn is None:
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        handler = getattr(obj, "handler", obj)  # a TaskType: its handler
        fn = _targets[target] = handler
    return fn


def _call(fn: Callable[..., Any], ctx: ChildContext, payload: dict[str, Any]) -> Any:
    _state.interruptible = True
    try:
        result = fn(ctx, payload)
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return result
    finally:
        _state.interruptible = False


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _run(sock: socket.socket, msg: Run) -> None:
    _state.cancelled = False
    ctx = ChildContext(sock, msg.task_id, msg.attempt, msg.parents)
    try:
        result = _call(_resolve(msg.target), ctx, msg.payload)
    except BaseException as exc:  # every failure goes back to the parent
        if _state.cancelled:
            sock.sendall(frame(Interrupted(_rss(msg))))
            return
        try:
            text = str(exc) or type(exc).__name__
        except Exception:
            text = f"{type(exc).__name__} (its message could not be read)"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        partial = getattr(exc, "task_result", None)
        raw = None
        if partial is not None:
            with contextlib.suppress(Exception):
                raw = _encode_json(partial)
        sock.sendall(frame(Failed(type(exc).__name__, text, tb, _rss(msg), raw)))
        return
    if _state.cancelled:
        sock.sendall(frame(Interrupted(_rss(msg))))
        return
    try:
        raw_result = None if result is None else _encode_json(result)
    except Exception as exc:
        message = f"the handler's result is not JSON: {exc}"
        sock.sendall(frame(Failed("invalid_result", message, "", _rss(msg))))
        return
    sock.sendall(frame(Done(raw_result, _rss(msg))))


def _rss(msg: Run) -> int:
    return rss_bytes() if msg.rss else 0


def _die_with_parent(parent_pid: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(0)


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[1]), int(argv[2])
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _on_cancel)
    sock = socket.socket(fileno=fd)
    try:
        return _serve(sock)
    except (BrokenPipeError, ConnectionResetError):  # the parent is gone or let us go
        return 0


def _serve(sock: socket.socket) -> int:
    sock.sendall(frame(Ready(os.getpid())))
    reader = FrameReader()
    while True:
        try:
            data = sock.recv(1 << 16)
        except TaskInterrupted:  # a late cancel signal, between tasks
            continue
        if not data:  # the parent closed its end: time to go
            return 0
        for body in reader.feed(data):
            _run(sock, decode_to_child(body))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
