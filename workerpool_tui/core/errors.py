"""The engine's refusals. Each carries a stable ``code`` the API maps to a status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Task


class EngineError(Exception):
    code = "engine_error"


class InvalidRequest(EngineError):
    code = "invalid_request"


class UnknownTaskType(EngineError):
    code = "unknown_task_type"


class QueueFull(EngineError):
    """The bounded queue cannot take the whole submission; nothing was enqueued."""

    code = "queue_full"

    def __init__(self, message: str, *, depth: int, capacity: int, retry_after_s: float) -> None:
        super().__init__(message)
        self.depth = depth
        self.capacity = capacity
        self.retry_after_s = retry_after_s


class NotFound(EngineError):
    code = "not_found"


class AmbiguousId(EngineError):
    """An id prefix that more than one task starts with; ``candidates`` lists some."""

    code = "ambiguous_id"

    def __init__(self, message: str, *, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class AlreadyFinished(EngineError):
    code = "already_finished"


class StoreUnavailable(EngineError):
    """The store could not commit the submission: nothing of it was kept, queued or run,
    so the client may safely send it again (after ``retry_after_s``)."""

    code = "store_unavailable"

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ShuttingDown(EngineError):
    code = "shutting_down"


class StoreError(Exception):
    """The task store cannot be used (in use, corrupt, too new, unreachable); one line.

    Raised when a store is opened: the CLI prints it and exits 2. (Once running, a store
    that cannot write raises :class:`StoreUnavailable` instead.)"""


class StoreLocked(StoreError):
    """Another process holds the store."""


class Duplicate(EngineError):
    """A task with the same ``unique_key`` is unfinished (or within its window):
    ``existing`` is that task (``existing_id`` its id); nothing of the submission was
    kept."""

    code = "duplicate"

    def __init__(
        self, message: str, *, existing: Task | None, existing_id: str = "", index: int = 0
    ) -> None:
        super().__init__(message)
        self.existing = existing
        """``None`` when the holder could not be read yet (cluster: still committing)."""
        self.existing_id = existing.id if existing is not None else existing_id
        self.index = index
        """Which task of the submission (0 outside a batch)."""


class Blocked(EngineError):
    """``run`` on a task that waits for its parents (only a time can be skipped)."""

    code = "blocked"
