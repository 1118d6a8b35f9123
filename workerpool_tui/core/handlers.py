"""Task types: the handler contract, the type registry, and loading user handlers.

Contract: ``async def handler(ctx, payload) -> JSON value``. A plain function runs in a
worker thread (through the engine's capacity limiter); it reports progress through the
same ``ctx`` and should look at ``ctx.cancel_requested`` in long loops, because a thread
cannot be interrupted: ``ctx.progress`` raises :class:`TaskInterrupted` once a cancel or
timeout has been requested, which is where most handlers notice.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from . import wholenum

if TYPE_CHECKING:
    from .models import Task

ENTRY_POINT_GROUP = "workerpool_tui.tasks"
_EVENT_LOCK = threading.Lock()


class TaskInterrupted(Exception):
    """Raised inside a sync handler's thread when its task was cancelled or timed out."""


class HandlerLoadError(Exception):
    """A user handler could not be loaded; the message names the config key or entry point."""


class _ProgressSink(Protocol):
    def _task_progress(self, task: Task, pct: float, message: str | None) -> None: ...

    def _task_log(self, task: Task, line: str) -> None: ...

    def _call_from_thread(self, fn: Callable[..., object], *args: object) -> None: ...

    def parent_results(self, task: Task) -> dict[str, Any]: ...

    @property
    def loop_thread(self) -> int: ...


class CancelFlag:
    """Whether the task was cancelled or timed out; safe to use from any thread.

    Reads like ``threading.Event`` (``is_set``, ``wait``), but the event itself is made
    only when someone waits: a lock and a condition per task would cost more than the rest
    of a short task's bookkeeping. A view of its context.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: TaskContext) -> None:
        self._ctx = ctx

    def is_set(self) -> bool:
        return self._ctx._cancelled

    def set(self) -> None:
        self._ctx._cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block (in a handler's thread) until cancelled or ``timeout``; True if cancelled."""
        ctx = self._ctx
        event = ctx._event
        if event is None:
            with _EVENT_LOCK:
                event = ctx._event
                if event is None:
                    event = ctx._event = threading.Event()
        # The event is published before the flag is read, and _cancel sets the flag before
        # it reads the event: whichever runs second sees the other's write.
        if ctx._cancelled:
            return True
        return event.wait(timeout)

    def __bool__(self) -> bool:
        return self._ctx._cancelled


class TaskContext:
    """What a handler gets besides its payload."""

    __slots__ = ("_cancelled", "_event", "_parents", "_sink", "_task", "attempt", "task_id")

    def __init__(self, sink: _ProgressSink, task: Task) -> None:
        self._sink = sink
        self._task = task
        self._cancelled = False
        self._event: threading.Event | None = None
        self._parents: dict[str, Any] | None = None
        """Set before the handler runs when some parents were read from a shared store."""
        self.task_id = task.id
        self.attempt = task.attempts
        """1 for the first run, 2 for the first retry, ..."""

    def _cancel(self) -> None:
        self._cancelled = True
        event = self._event
        if event is not None:
            event.set()

    @property
    def cancel_requested(self) -> CancelFlag:
        """Set when the task is cancelled or times out; sync handlers should poll it."""
        return CancelFlag(self)

    def progress(self, pct: float, message: str | None = None) -> None:
        """Report progress (0-100) and an optional note. Safe from the loop or a thread."""
        pct = 0.0 if pct < 0 else 100.0 if pct > 100 else float(pct)
        if threading.get_ident() == self._sink.loop_thread:
            self._sink._task_progress(self._task, pct, message)
            return
        if self._cancelled:
            raise TaskInterrupted(self.task_id)
        self._sink._call_from_thread(self._sink._task_progress, self._task, pct, message)

    @property
    def parent_results(self) -> dict[str, Any]:
        """The results of this task's parents (``depends_on``), by id."""
        if self._parents is not None:
            return self._parents
        return self._sink.parent_results(self._task)

    def log(self, line: str) -> None:
        """Keep a line with the task (bounded); shown in the detail view and the API."""
        if threading.get_ident() == self._sink.loop_thread:
            self._sink._task_log(self._task, str(line))
        else:
            self._sink._call_from_thread(self._sink._task_log, self._task, str(line))


Handler = Callable[[TaskContext, dict[str, Any]], Any]


class TaskType(msgspec.Struct, frozen=True):
    """A registered task type."""

    name: str
    handler: Handler
    description: str = ""
    payload_type: type[Any] | None = None
    """A ``msgspec.Struct`` the payload must convert to; checked at submission."""
    is_async: bool = True
    isolation: str = "thread"
    """``"thread"`` (the event loop, or a worker thread for a plain function) or
    ``"process"`` (a worker process: ``core/procpool``)."""
    target: str | None = None
    """``package.module:function`` when the handler can be imported by name (a worker
    process imports it so); ``None`` otherwise."""

    def payload_schema(self) -> dict[str, Any] | None:
        if self.payload_type is None:
            return None
        schema: dict[str, Any] = msgspec.json.schema(self.payload_type)
        return schema

    def check_payload(self, payload: dict[str, Any]) -> None:
        """Raise ``ValueError`` with msgspec's words when the payload does not fit."""
        if self.payload_type is not None:
            try:
                wholenum.convert(payload, self.payload_type)
            except msgspec.ValidationError as exc:
                raise ValueError(f"payload: {exc}") from None


def task_type(
    name: str,
    handler: Handler,
    *,
    description: str | None = None,
    payload_type: type[Any] | None = None,
    isolation: str | None = None,
    target: str | None = None,
) -> TaskType:
    """Build a :class:`TaskType`, reading the description from the docstring if not given.
    ``isolation="process"`` (or a handler attribute ``isolation``) runs it in a worker
    process; its handler must then be importable (``target``, found from the function's
    module and name when not given)."""
    doc = description if description is not None else inspect.getdoc(handler) or ""
    is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callables
    )
    return TaskType(
        name=name,
        handler=handler,
        description=doc.split("\n\n", 1)[0].replace("\n", " "),
        payload_type=payload_type or getattr(handler, "payload_type", None),
        is_async=is_async,
        isolation=isolation or str(getattr(handler, "isolation", None) or "thread"),
        target=target or _target_of(handler),
    )


def _target_of(handler: object) -> str | None:
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    return f"{module}:{qualname}"


class TypeRegistry:
    def __init__(self, types: Iterable[TaskType] = ()) -> None:
        self._types: dict[str, TaskType] = {}
        self.get: Callable[[str], TaskType | None] = self._types.get
        """The type of that name, or ``None`` (the dict's own ``get``: it is on the hot path)."""
        for t in types:
            self.add(t)

    def add(self, t: TaskType) -> None:
        self._types[t.name] = t

    def __contains__(self, name: str) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[TaskType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def names(self) -> list[str]:
        return sorted(self._types)


def _as_task_type(name: str, obj: object, where: str, target: str | None = None) -> TaskType:
    if isinstance(obj, TaskType):
        return msgspec.structs.replace(obj, name=name, target=target or obj.target)
    if callable(obj):
        return task_type(name, obj, target=target)
    raise HandlerLoadError(f"{where}: {obj!r} is not callable")


def load_handler(name: str, target: str) -> TaskType:
    """``package.module:function`` from ``[task.handlers]``."""
    where = f"task.handlers.{name}"
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise HandlerLoadError(f"{where}: expected 'package.module:function', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise HandlerLoadError(f"{where}: cannot import {module_name!r}: {exc}") from None
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise HandlerLoadError(f"{where}: {module_name!r} has no attribute {attr!r}") from None
    return _as_task_type(name, obj, where, target)


def load_entry_points() -> list[TaskType]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise HandlerLoadError(f"{where}: cannot load: {exc}") from None
        found.append(_as_task_type(ep.name, obj, where, ep.value))
    return found


def build_registry(
    *, handlers: Mapping[str, str], allow_shell: bool, entry_points_too: bool = True
) -> TypeRegistry:
    """Built-ins, then entry points, then ``[task.handlers]`` (later names win)."""
    from .builtin import builtin_types
    from .shell import shell_task_type

    reg = TypeRegistry(builtin_types())
    if allow_shell:
        reg.add(shell_task_type())
    if entry_points_too:
        for t in load_entry_points():
            reg.add(t)
    for name, target in handlers.items():
        reg.add(load_handler(name, target))
    return reg
