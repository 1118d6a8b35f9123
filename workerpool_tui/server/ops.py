"""Operating endpoints of ``Api`` (issue 14), a mixin like ``pages.py``: a task's log
lines followed by long poll, the Prometheus metrics, and bulk actions."""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar
from urllib.parse import parse_qs

import msgspec

from ..config import parse_duration
from ..core.admission import INT_MAX
from ..core.bulk import BulkFilter, run_bulk
from ..core.engine import Engine
from ..core.logs import LOGS_WAIT_MAX_S, read_logs
from ..core.models import TaskStatus
from .broadcast import Broadcaster
from .metrics import CONTENT_TYPE, MetricsExporter
from .request import Request
from .responses import Response, error_response, json_response

_INTEGER = re.compile(r"[0-9]{1,19}")
_T = TypeVar("_T")
DURATION = r"^[ \t]*[0-9]+(\.[0-9]+)?[ \t]*(ms|s|m|h|d)?[ \t]*$"
"""A duration string as ``parse_duration`` reads it (seconds without a unit)."""


class BulkFilterBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which tasks: every given field must match; ``{}`` matches every task."""

    status: list[TaskStatus] | None = None
    type: str | None = None
    q: str | None = None
    ids: list[str] | None = None
    older_than: (
        Annotated[float, msgspec.Meta(ge=0)] | Annotated[str, msgspec.Meta(pattern=DURATION)] | None
    ) = None
    """Seconds or a duration (``"1h"``): final tasks that finished, others created, longer
    ago than this."""


class BulkRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    action: Literal["cancel", "retry", "delete"]
    filter: BulkFilterBody = msgspec.field(default_factory=BulkFilterBody)
    dry_run: bool = False
    """Count what would change; change nothing."""


class QueryError(Exception):
    """A query parameter out of its range: 400 ``invalid_request``."""


def query_values(request: Request) -> dict[str, str]:
    """The query string, the last value of each name."""
    return {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}


def query_int(query: dict[str, str], name: str, default: int, high: int = INT_MAX) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw) or int(raw) > high:
        raise QueryError(f"{name}: expected an integer from 0 to {high}, got {raw!r}")
    return int(raw)


_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")


def query_seconds(query: dict[str, str], name: str, high: float) -> float:
    raw = query.get(name)
    if raw is None or raw == "":
        return 0.0
    try:
        # A plain number in any notation JSON Schema's "number" allows (1e-3, 2.5E1), or a
        # duration such as 10s.
        value = float(raw) if _NUMBER.fullmatch(raw) else parse_duration(raw)
    except ValueError as exc:
        raise QueryError(f"{name}: {exc}") from None
    if not 0 <= value <= high:
        raise QueryError(f"{name}: must be between 0 and {high:g} seconds, got {raw!r}")
    return value


class OpsHandlers:
    """``GET /api/v1/tasks/{id}/logs``, ``GET /metrics``."""

    engine: Engine
    broadcaster: Broadcaster
    _metrics: MetricsExporter | None = None

    def _decode(self, request: Request, type_: type[_T]) -> _T:
        raise NotImplementedError  # Api's

    async def bulk_tasks(self, request: Request) -> Response:
        body = self._decode(request, BulkRequest)
        f = body.filter
        older_than = None
        if f.older_than is not None:
            try:
                older_than = parse_duration(f.older_than)
            except ValueError as exc:
                return error_response(400, "invalid_request", f"filter.older_than: {exc}")
        flt = BulkFilter(status=f.status, type=f.type, q=f.q, ids=f.ids, older_than=older_than)
        result = await run_bulk(self.engine, body.action, flt, dry_run=body.dry_run)
        return json_response(200, result)

    async def metrics(self, request: Request) -> Response:
        exporter = self._metrics
        if exporter is None:
            exporter = self._metrics = MetricsExporter(self.engine, self.broadcaster)
        return Response(200, await exporter.scrape(), content_type=CONTENT_TYPE)

    async def task_logs(self, request: Request, id: str) -> Response:
        query = query_values(request)
        try:
            since = query_int(query, "since", 0)
            wait_s = query_seconds(query, "wait", LOGS_WAIT_MAX_S)
        except QueryError as exc:
            return error_response(400, "invalid_request", str(exc))
        return json_response(200, await read_logs(self.engine, id, since, wait_s))
