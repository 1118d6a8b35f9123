"""Admission of the time-and-order fields of a submission: ``run_at`` (or ``delay``),
``depends_on`` (with ``"$N"`` batch references), ``unique_key`` / ``unique_for`` and
``on_duplicate``. The engine calls :func:`plan` for every submission, whatever the store.

Rules (also in ``docs/scheduling.md``):

- ``run_at``: a finite epoch time; one in the past means now.
- ``depends_on``: at most :data:`MAX_PARENTS` ids of existing tasks, or ``"$N"`` for the
  N-th task (from 0) of the same batch, which must come before the task that names it:
  so a parent always exists before its child and a cycle cannot be built.
- ``unique_key``: 1 to 200 characters; ``unique_for`` more than 0 seconds.
- ``on_duplicate``: ``"error"`` (409 ``duplicate``) or ``"return"`` (the existing task).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .errors import Duplicate, InvalidRequest
from .models import Task, TaskSpec

MAX_PARENTS = 100
MAX_UNIQUE_KEY = 200


def check_order(spec: TaskSpec, index: int, where: str) -> None:
    if spec.run_at is not None and not math.isfinite(spec.run_at):
        raise InvalidRequest(f"{where}run_at: not a time")
    if spec.unique_key is not None and not 1 <= len(spec.unique_key) <= MAX_UNIQUE_KEY:
        raise InvalidRequest(f"{where}unique_key: 1 to {MAX_UNIQUE_KEY} characters")
    if spec.unique_for is not None:
        if spec.unique_key is None:
            raise InvalidRequest(f"{where}unique_for: needs a unique_key")
        if not 0 < spec.unique_for < math.inf:
            raise InvalidRequest(f"{where}unique_for: must be more than 0 seconds")
    if spec.on_duplicate not in ("error", "return"):
        raise InvalidRequest(f"{where}on_duplicate: 'error' or 'return', got {spec.on_duplicate!r}")
    if len(spec.depends_on) > MAX_PARENTS:
        raise InvalidRequest(f"{where}depends_on: at most {MAX_PARENTS} parents")
    for ref in spec.depends_on:
        if not isinstance(ref, str) or not ref:
            raise InvalidRequest(f"{where}depends_on: ids are non-empty strings")
        if ref.startswith("$"):
            n = ref[1:]
            if not n.isdigit() or int(n) >= index:
                raise InvalidRequest(
                    f"{where}depends_on: {ref!r} must name an earlier task of the same"
                    f" batch ($0 to ${index - 1})"
                    if index
                    else f"{where}depends_on: {ref!r}: the first task of a batch has no"
                    " earlier task to wait for"
                )


class Plan:
    """What a submission becomes: for each spec, either a new task (``None`` in
    :attr:`existing`) or the existing task answered for it (``on_duplicate="return"``)."""

    def __init__(self, n: int) -> None:
        self.existing: list[Task | None] = [None] * n
        self.same_as: dict[int, int] = {}
        """A task of the batch answered with an earlier one's (a repeated key)."""

    def new(self, i: int) -> bool:
        return self.existing[i] is None and i not in self.same_as


def plan(
    specs: Sequence[TaskSpec],
    *,
    holder: Callable[[str], Task | None],
    where: Callable[[int], str],
) -> Plan:
    """Check the order fields of ``specs`` and find their duplicates: ``holder(key)`` is
    the task holding a unique key now (the local stores; the cluster store's database
    answers at insert time instead). A duplicate with ``on_duplicate="error"`` raises
    :class:`Duplicate`; a key repeated inside the batch is a duplicate of its first use."""
    result = Plan(len(specs))
    first_use: dict[str, int] = {}
    for i, spec in enumerate(specs):
        check_order(spec, i, where(i))
        key = spec.unique_key
        if key is None:
            continue
        existing = holder(key)
        if existing is None and key in first_use:
            earlier = first_use[key]
            if spec.on_duplicate == "error":
                raise InvalidRequest(
                    f"{where(i)}unique_key: {key!r} is also the key of tasks[{earlier}]"
                )
            result.same_as[i] = earlier
            continue
        if existing is not None:
            if spec.on_duplicate == "error":
                raise Duplicate(
                    f"{where(i)}unique_key {key!r} is held by task {existing.id}"
                    f" ({existing.status.value})",
                    existing=existing,
                    index=i,
                )
            result.existing[i] = existing
            continue
        first_use[key] = i
    return result


def parents(
    spec: TaskSpec, batch: Sequence[Task], where: str, exists: Callable[[str], bool]
) -> tuple[str, ...] | None:
    """``spec.depends_on`` as task ids (``batch``: the batch's tasks so far)."""
    if not spec.depends_on:
        return None
    out: list[str] = []
    for ref in spec.depends_on:
        if ref.startswith("$"):
            out.append(batch[int(ref[1:])].id)
        elif exists(ref):
            out.append(ref)
        else:
            raise InvalidRequest(f"{where}depends_on: no task with id {ref!r}")
    return tuple(dict.fromkeys(out))
