"""Operating endpoints of ``Api`` (issue 14), a mixin like ``pages.py``: a task's log
lines followed by long poll, and the Prometheus metrics."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from ..config import parse_duration
from ..core.admission import INT_MAX
from ..core.engine import Engine
from ..core.logs import LOGS_WAIT_MAX_S, read_logs
from .broadcast import Broadcaster
from .metrics import CONTENT_TYPE, MetricsExporter
from .request import Request
from .responses import Response, error_response, json_response

_INTEGER = re.compile(r"[0-9]{1,19}")


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


def query_seconds(query: dict[str, str], name: str, high: float) -> float:
    raw = query.get(name)
    if raw is None or raw == "":
        return 0.0
    try:
        value = parse_duration(raw)
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
