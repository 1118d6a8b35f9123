"""The application behind the route table of ``routes.py``: dispatch, decoding and the
handler of every endpoint.

Every handler decodes its input with the structs of ``schemas.py`` (``decoding.py``) and
answers with them; engine refusals map to the status codes of SPEC §8 in
:func:`~.decoding.engine_error`. Host, token and route are checked on the request head
(:meth:`Api.refuse_head`), before a body is read. A task's answer is encoded straight from
the task (``taskjson.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs

from .. import __version__
from ..config import ServerConfig
from ..core.admission import INT_MAX
from ..core.engine import Engine
from ..core.errors import EngineError
from ..core.models import TaskSpec, TaskStatus
from .access import HostPolicy, token_matches
from .broadcast import Broadcaster
from .decoding import Refused, decode_body, duration, engine_error, invalid
from .instances import instance_list, worker_list
from .limits import Limits
from .ops import OpsHandlers
from .pages import PageHandlers, default_web_root
from .request import Request
from .responses import Response, error_response, json_response
from .routes import (
    API_PREFIX,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    METRICS_PATH,
    ROUTES,
    WS_PATH,
    Route,
)
from .schedules import ScheduleHandlers
from .schemas import (
    BatchRequest,
    Health,
    PoolPatch,
    PoolView,
    SubmitRequest,
    TypePatch,
)
from .taskjson import batch_json, list_json, task_json
from .timing import submitted_run_at
from .types import patch_type, type_list

_INTEGER = re.compile(r"-?[0-9]{1,20}")
_T = TypeVar("_T")


_NO_PARAMS: dict[str, str] = {}
"""The parameters of a route without any (never mutated)."""


class Api(PageHandlers, OpsHandlers, ScheduleHandlers):
    """The application: turns a :class:`Request` into a :class:`Response`."""

    def __init__(
        self,
        engine: Engine,
        cfg: ServerConfig,
        limits: Limits,
        broadcaster: Broadcaster,
        *,
        web_root: Path | Traversable | None = None,
        openapi: Callable[[], bytes] | None = None,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.limits = limits
        self.broadcaster = broadcaster
        self.web_root = web_root if web_root is not None else default_web_root()
        self._openapi = openapi
        self._token = cfg.auth_token.encode()
        self._hosts = (
            None if self._token else HostPolicy(bound_host=cfg.host, allowed=cfg.allowed_hosts)
        )
        self._static: dict[str, dict[str, Route]] = {}
        self._templated: list[tuple[list[str], dict[str, Route]]] = []
        for route in ROUTES:
            if "{" in route.path:
                segments = route.path.strip("/").split("/")
                for known, methods in self._templated:
                    if known == segments:
                        methods[route.method] = route
                        break
                else:
                    self._templated.append((segments, {route.method: route}))
            else:
                self._static.setdefault(route.path, {})[route.method] = route
        self._handlers: dict[str, Callable[..., Awaitable[Response]]] = {
            r.handler: getattr(self, r.handler) for r in ROUTES
        }

    # ------------------------------------------------------------------ dispatch
    def _match(self, path: str) -> tuple[dict[str, Route] | None, dict[str, str]]:
        methods = self._static.get(path)
        if methods is not None:
            return methods, {}
        parts = path.strip("/").split("/")
        for segments, methods in self._templated:
            if len(segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(segments, parts, strict=True):
                if want[0] == "{":
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return methods, params
        return None, {}

    def refuse_head(self, request: Request) -> Response | None:
        """Host, token and route, decided on the head: a refused request's body is never
        read. The matched route and its parameters are kept on the request."""
        path = request.path
        hosts = self._hosts
        if (
            hosts is not None
            and request.header(b"host") not in hosts.passed
            and not hosts.allows(request.header(b"host"), request.local_ip())
        ):
            return error_response(
                403,
                "forbidden_host",
                "this Host is not served without a token: use localhost or a loopback"
                " address, or list the name in server.allowed_hosts",
            )
        if (
            self._token
            and (
                path.startswith(API_PREFIX)
                or (path == METRICS_PATH and not self.engine.config.metrics.public)
            )
            and not token_matches(
                self._token,
                request.header(b"authorization"),
                request.query if path == WS_PATH else None,
            )
        ):
            return error_response(
                401,
                "unauthorized",
                "missing or wrong token (Authorization: Bearer <token>)",
                headers=[(b"www-authenticate", b"Bearer")],
            )
        methods = self._static.get(path)
        params: dict[str, str] = _NO_PARAMS
        if methods is None:
            methods, params = self._match(path)
        if methods is None:
            return error_response(404, "not_found", f"no such endpoint: {path}")
        method = "GET" if request.method == "HEAD" else request.method
        route = methods.get(method)
        if route is None:
            allow = sorted(methods)
            if "GET" in allow:
                allow.append("HEAD")
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {path}",
                headers=[(b"allow", ", ".join(allow).encode())],
            )
        request.route = (route, params)
        return None

    async def __call__(self, request: Request) -> Response:
        if request.route is None:
            refusal = self.refuse_head(request)
            if refusal is not None:
                return refusal
        route, params = request.route
        handler = self._handlers[route.handler]
        try:
            return await (handler(request, **params) if params else handler(request))
        except EngineError as exc:
            return engine_error(exc)
        except Refused as refused:
            return refused.response

    # ------------------------------------------------------------------ decoding
    _decode = staticmethod(decode_body)

    def _spec(self, req: SubmitRequest, where: str = "") -> TaskSpec:
        run_at = None
        if req.delay is not None or req.run_at is not None:
            try:
                run_at = submitted_run_at(req, self.engine.clock.now())
            except ValueError as exc:
                raise invalid(f"{where}{exc}") from None
        timeout, unique_for = req.timeout, req.unique_for
        return TaskSpec(
            type=req.type,
            payload=req.payload,
            priority=req.priority,
            timeout_s=None if timeout is None else duration(where, "timeout", timeout),
            max_retries=req.max_retries,
            run_at=run_at,
            depends_on=tuple(req.depends_on),
            unique_key=req.unique_key,
            unique_for=None if unique_for is None else duration(where, "unique_for", unique_for),
            on_duplicate=req.on_duplicate,
        )

    # ------------------------------------------------------------------ handlers
    async def health(self, request: Request) -> Response:
        engine = self.engine
        name = engine.store.name if engine.store is not None else None
        reason = engine.degraded()
        if reason is not None:
            return json_response(
                503, Health("degraded", engine.uptime_s(), __version__, reason, name)
            )
        return json_response(200, Health("ok", engine.uptime_s(), __version__, None, name))

    async def instances(self, request: Request) -> Response:
        return json_response(200, await instance_list(self.engine))

    async def workers(self, request: Request) -> Response:
        return json_response(200, worker_list(self.engine))

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            return error_response(404, "not_found", "no OpenAPI document")
        return Response(200, self._openapi())

    async def submit(self, request: Request) -> Response:
        spec = self._spec(self._decode(request, SubmitRequest))
        created: list[bool] = []
        task = (await self.engine.submit_many([spec], created=created))[0]
        # A duplicate answered with the existing task (on_duplicate="return") is 200.
        status = 201 if created[0] else 200
        # (Headers by position: a keyword makes CPython build a dict to call a class.)
        return Response(
            status, task_json(task), [(b"location", f"/api/v1/tasks/{task.id}".encode())]
        )

    async def submit_batch(self, request: Request) -> Response:
        batch = self._decode(request, BatchRequest)
        if not batch.tasks:
            raise invalid("tasks: must not be empty")
        if len(batch.tasks) > self.limits.max_batch_tasks:
            raise invalid(f"tasks: at most {self.limits.max_batch_tasks} in one batch")
        specs = [self._spec(t, f"tasks[{i}].") for i, t in enumerate(batch.tasks)]
        tasks = await self.engine.submit_many(specs)
        return Response(201, batch_json(tasks))

    async def list_tasks(self, request: Request) -> Response:
        query = parse_qs(request.query, keep_blank_values=True)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        def integer(name: str, default: int, high: int) -> int:
            raw = one(name)
            if raw is None:
                return default
            if not _INTEGER.fullmatch(raw):  # int() would take " 5", "+5", "1_0", "٣"
                raise invalid(f"{name}: expected an integer from 0 to {high}, got {raw!r}")
            value = int(raw)
            if not 0 <= value <= high:
                raise invalid(f"{name}: must be between 0 and {high}, got {value}")
            return value

        statuses: list[TaskStatus] | None = None
        raw_status = one("status")
        if raw_status:
            statuses = []
            for name in raw_status.split(","):
                try:
                    statuses.append(TaskStatus(name.strip(" \t")))
                except ValueError:
                    known = ", ".join(s.value for s in TaskStatus)
                    raise invalid(f"status: unknown {name!r} (one of {known})") from None
        limit = integer("limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)
        offset = integer("offset", 0, INT_MAX)
        tasks, total = await self.engine.list_tasks(
            status=statuses,
            type_=one("type") or None,
            q=one("q") or None,
            waiting=one("waiting") or None,
            parent=one("parent") or None,
            limit=limit,
            offset=offset,
        )
        return Response(200, list_json(tasks, total))

    async def stats(self, request: Request) -> Response:
        return json_response(200, self.engine.stats())

    async def get_task(self, request: Request, id: str) -> Response:
        return Response(200, task_json(await self.engine.lookup(id)))

    async def cancel_task(self, request: Request, id: str) -> Response:
        return Response(200, task_json(await self.engine.cancel(id)))

    async def run_task(self, request: Request, id: str) -> Response:
        return Response(200, task_json(await self.engine.run_now(id)))

    async def retry_task(self, request: Request, id: str) -> Response:
        task = await self.engine.retry(id)
        return Response(
            201, task_json(task), headers=[(b"location", f"/api/v1/tasks/{task.id}".encode())]
        )

    async def types(self, request: Request) -> Response:
        return json_response(200, type_list(self.engine))

    async def patch_type(self, request: Request, name: str) -> Response:
        patch = self._decode(request, TypePatch)
        return json_response(200, await patch_type(self.engine, name, patch))

    async def get_pool(self, request: Request) -> Response:
        return json_response(200, PoolView.of(self.engine.pool_state()))

    async def patch_pool(self, request: Request) -> Response:
        patch = self._decode(request, PoolPatch)
        engine = self.engine
        if patch.min_workers is not None or patch.max_workers is not None:
            state = engine.pool_state()
            low = state.min if patch.min_workers is None else patch.min_workers
            high = state.max if patch.max_workers is None else patch.max_workers
            if low > high:
                # Each value may be fine alone: it is their combination with each other, or
                # with the current bound, that cannot be (409, not 400; nothing changes).
                raise Refused(
                    error_response(
                        409,
                        "pool_conflict",
                        f"min_workers ({low}) would exceed max_workers ({high})",
                    )
                )
            engine.resize(min_workers=patch.min_workers, max_workers=patch.max_workers)
        if patch.paused is True:
            engine.pause()
        elif patch.paused is False:
            engine.resume()
        return json_response(200, PoolView.of(engine.pool_state()))
