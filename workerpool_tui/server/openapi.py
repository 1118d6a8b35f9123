"""``GET /openapi.json``: an OpenAPI 3.1 document of this server, built from the route table,
the msgspec structs the handlers decode and encode, and the server's own configuration, so
that it describes exactly what the server accepts and answers:

- ``type`` is one of the registered task types, each with its payload's schema;
- ``timeout``, ``min_workers`` / ``max_workers`` and a batch's size carry this server's
  bounds (``task.max_task_timeout``, ``task.max_concurrent_tasks``, 1000 tasks);
- every status an operation can answer is listed, each with the error codes it carries
  (and ``Location``, ``Retry-After``, ``WWW-Authenticate`` where they are sent);
- bearer authentication is declared only when ``server.auth_token`` is set, and then
  ``403 forbidden_host`` is not (see ``access.py``).

It is built once, on the first request for it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .. import __version__
from ..core.admission import INT_MAX
from ..core.handlers import TaskType
from .openapi_values import (
    JSON_VALUE,
    delay_schema,
    json_value_schema,
    payload_schema,
    status_filter_pattern,
    timeout_schema,
    unique_for_schema,
)
from .responses import ERROR_CODES, ErrorBody
from .routes import METRICS_PATH, ROUTES, WS_PATH, Route
from .schemas import BatchRequest, PoolPatch, WsMessage

REF = "#/components/schemas/{name}"
PAYLOAD_REF = "#/components/schemas/payload.{name}"
COMMON_ERRORS = (
    "invalid_request",  # malformed HTTP
    "request_timeout",
    "body_too_large",
    "headers_too_large",
    "shutting_down",
    "too_many_connections",
)
LOCATION_HANDLERS = frozenset({"submit", "retry_task"})
"""The operations that answer ``Location`` (a batch's tasks have no single one)."""
LINKED_HANDLERS = frozenset({"submit", "retry_task", "get_task"})
"""Operations answering one task: links lead from it to what can be done with it."""
_TASK_LINKS = {"GetTask": "get_task", "CancelTask": "cancel_task", "RetryTask": "retry_task"}
_HEADERS: dict[str, dict[str, Any]] = {
    "location": {"description": "the new task's URL", "schema": {"type": "string"}},
    "retry-after": {"description": "seconds to wait", "schema": {"type": "integer"}},
    "www-authenticate": {"schema": {"type": "string", "const": "Bearer"}},
}


class DocumentSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What of a server's configuration the document states."""

    token: bool
    types: tuple[TaskType, ...]
    max_workers: int
    """``task.max_concurrent_tasks``: the bound of ``min_workers`` and ``max_workers``."""
    max_task_timeout: float
    max_batch_tasks: int
    max_body_bytes: int
    metrics_public: bool = False
    """``metrics.public``: ``GET /metrics`` needs no token."""

    def needs_token(self, route: Route) -> bool:
        if route.path == METRICS_PATH and self.metrics_public:
            return False
        return self.token and route.auth


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _submit_variants(
    settings: DocumentSettings, base: dict[str, Any], components: dict[str, Any]
) -> dict[str, Any]:
    """``SubmitRequest`` as one variant per task type: its name and its payload."""
    variants = []
    for task_type in settings.types:
        if task_type.payload_type is not None:
            (declared,), defs = msgspec.json.schema_components(
                [task_type.payload_type], ref_template=PAYLOAD_REF
            )
            components.update({f"payload.{k}": v for k, v in defs.items()})
            if "$ref" in declared:
                name = declared["$ref"].rsplit("/", 1)[1]
                components[name] = payload_schema(components[name])
                payload = declared
            else:
                payload = payload_schema(declared)
        else:
            payload = payload_schema(None)
        properties = dict(base["properties"])
        properties["type"] = {"const": task_type.name, "description": task_type.description}
        properties["payload"] = payload
        properties["timeout"] = timeout_schema(settings.max_task_timeout)
        properties["delay"] = delay_schema()
        properties["unique_for"] = unique_for_schema()
        variants.append(
            {
                "title": task_type.name,
                "type": "object",
                "properties": properties,
                "required": ["type"],
                "additionalProperties": False,
            }
        )
    return {
        "description": base.get("description", ""),
        "oneOf": variants or [{"not": {}}],
    }


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "allOf": [
            _ref("ErrorBody"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }


def _responses(route: Route, settings: DocumentSettings) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if route.websocket:
        responses["101"] = {
            "description": "Switching to WebSocket; the server's messages are JSON text"
            " frames of the schema WsMessage (x-websocket-messages)",
            "x-websocket-messages": _ref("WsMessage"),
        }
    elif isinstance(route.response, tuple):
        body = {"type": "object"} if route.response == ("application/json",) else {}
        responses[str(route.status)] = {
            "description": "OK",
            "content": {media: {"schema": body} for media in route.response},
        }
    else:
        ok: dict[str, Any] = {
            "description": "Created" if route.status == 201 else "OK",
            "content": {"application/json": {"schema": _ref(route.response.__name__)}},
        }
        if route.handler in LOCATION_HANDLERS:
            ok["headers"] = {"Location": {**_HEADERS["location"], "required": True}}
        if route.handler in LINKED_HANDLERS:
            ok["links"] = {
                name: {"operationId": target, "parameters": {"id": "$response.body#/id"}}
                for name, target in _TASK_LINKS.items()
            }
        responses[str(route.status)] = ok
    codes = list(dict.fromkeys((*route.errors, *COMMON_ERRORS)))
    if settings.needs_token(route):
        codes.append("unauthorized")
    if not settings.token:
        codes.append("forbidden_host")
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    for status in sorted(by_status):
        status_codes = by_status[status]
        answer: dict[str, Any] = {
            "description": "; ".join(f"{c}: {ERROR_CODES[c][1]}" for c in status_codes),
            "content": {"application/json": {"schema": _error_schema(status_codes)}},
        }
        other = dict(route.other_answers).get(status)
        if other is not None:
            answer["description"] = f"{other.__name__}, or an error: {answer['description']}"
            answer["content"]["application/json"]["schema"] = {
                "oneOf": [_ref(other.__name__), _error_schema(status_codes)]
            }
        if status == 429:
            answer["headers"] = {"Retry-After": {**_HEADERS["retry-after"], "required": True}}
        elif "store_unavailable" in status_codes:
            answer["headers"] = {"Retry-After": {**_HEADERS["retry-after"], "required": False}}
        elif status == 401:
            answer["headers"] = {
                "WWW-Authenticate": {**_HEADERS["www-authenticate"], "required": True}
            }
        responses[str(status)] = answer
    return responses


def _parameters(route: Route, settings: DocumentSettings) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": seg[1:-1],
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        }
        for seg in route.path.split("/")
        if seg.startswith("{")
    ]
    for q in route.query:
        schema = dict(q.schema)
        if q.name == "status":
            schema["pattern"] = status_filter_pattern()
        elif q.name in ("offset", "since"):
            schema["maximum"] = INT_MAX
        params.append(
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": q.description,
            }
        )
    if route.websocket:
        for name, schema in (
            ("Upgrade", {"type": "string", "enum": ["websocket"]}),
            ("Connection", {"type": "string", "enum": ["Upgrade"]}),
            ("Sec-WebSocket-Version", {"type": "string", "enum": ["13"]}),
            (
                "Sec-WebSocket-Key",
                {"type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$"},
            ),
        ):
            params.append({"name": name, "in": "header", "required": True, "schema": schema})
        if settings.token:
            params.append(
                {
                    "name": "token",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "the API token, for browsers that cannot set headers"
                    " (instead of Authorization)",
                }
            )
    return params


def _operation(route: Route, settings: DocumentSettings) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.handler, "summary": route.summary}
    params = _parameters(route, settings)
    if params:
        op["parameters"] = params
    if route.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.request.__name__)}},
        }
    op["responses"] = _responses(route, settings)
    if settings.needs_token(route):
        op["security"] = [{"bearer": []}]
        if route.path == WS_PATH:
            op["security"].append({"query_token": []})
    elif settings.token:
        op["security"] = []
    return op


def _set_maximum(schema: dict[str, Any], maximum: int) -> None:
    """Bound the integer branch of an ``int | None`` field's schema."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "integer":
            branch["maximum"] = maximum


def openapi_document(settings: DocumentSettings) -> dict[str, Any]:
    types: list[Any] = [ErrorBody, WsMessage]
    for route in ROUTES:
        for t in (route.request, route.response):
            if t is not None and not isinstance(t, tuple) and t not in types:
                types.append(t)
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    components[JSON_VALUE] = json_value_schema()
    components["SubmitRequest"] = _submit_variants(
        settings, components["SubmitRequest"], components
    )
    tasks = components[BatchRequest.__name__]["properties"]["tasks"]
    tasks.update(minItems=1, maxItems=settings.max_batch_tasks)
    pool = components[PoolPatch.__name__]["properties"]
    _set_maximum(pool["min_workers"], settings.max_workers)
    _set_maximum(pool["max_workers"], settings.max_workers)
    detail = components["ErrorDetail"]["properties"]
    detail["code"] = {"type": "string", "enum": list(ERROR_CODES)}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, settings)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "workerpool-tui API",
            "version": __version__,
            "description": "Submit, watch and control tasks of a running workerpool-tui."
            " Every GET is also answered to HEAD. A method a path does not list is"
            " 405 method_not_allowed with Allow. Errors are"
            ' {"error": {"code", "message"}}; the codes: '
            + "; ".join(f"{c} ({s}): {d}" for c, (s, d) in ERROR_CODES.items())
            + f". Request bodies: at most {settings.max_body_bytes} bytes.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if settings.token:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "query_token": {"type": "apiKey", "in": "query", "name": "token"},
        }
    return document


def openapi_json(settings: DocumentSettings) -> bytes:
    return msgspec.json.encode(openapi_document(settings))
