"""``GET /openapi.json``: an OpenAPI 3.1 document built from the route table and the same
msgspec structs the handlers decode and encode, so it cannot drift from the code."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from .. import __version__
from .responses import ErrorBody
from .routes import ROUTES, Route
from .schemas import WsMessage

REF = "#/components/schemas/{name}"

_REASONS = {
    400: "invalid_json, invalid_request or unknown_task_type",
    401: "unauthorized: missing or wrong bearer token",
    403: "forbidden_origin",
    404: "not_found",
    405: "method_not_allowed (see Allow)",
    409: "already_finished, or ambiguous_id (an id prefix matching several tasks; the"
    " error lists the candidates)",
    413: "body_too_large",
    415: "unsupported_media_type: send application/json",
    429: "queue_full (see Retry-After)",
    431: "headers_too_large",
    503: "shutting_down or too_many_connections",
}


def _operation(route: Route, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.handler, "summary": route.summary}
    params: list[dict[str, Any]] = [
        {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for seg in route.path.split("/")
        if seg.startswith("{")
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": False,
            "schema": q.schema,
            "description": q.description,
        }
        for q in route.query
    ]
    if route.websocket:
        params.append(
            {
                "name": "token",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "the API token, for browsers that cannot set headers",
            }
        )
    if params:
        op["parameters"] = params
    if route.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[route.request]}},
        }
    responses: dict[str, Any] = {}
    if route.websocket:
        responses["101"] = {
            "description": "Switching to WebSocket; server messages follow this schema",
            "content": {"application/json": {"schema": refs[WsMessage]}},
        }
    elif isinstance(route.response, str):
        responses[str(route.status)] = {
            "description": "OK",
            "content": {route.response: {"schema": {"type": "string"}}},
        }
    else:
        responses[str(route.status)] = {
            "description": "Created" if route.status == 201 else "OK",
            "content": {"application/json": {"schema": refs[route.response]}},
        }
    error = {"application/json": {"schema": refs[ErrorBody]}}
    for status in sorted(set(route.errors)):
        responses[str(status)] = {"description": _REASONS[status], "content": error}
    op["responses"] = responses
    if route.auth:
        op["security"] = [{"bearer": []}]
    return op


@cache
def openapi_document() -> dict[str, Any]:
    types: list[Any] = [ErrorBody, WsMessage]
    for route in ROUTES:
        for t in (route.request, route.response):
            if t is not None and not isinstance(t, str) and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    refs = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "workerpool-tui API",
            "version": __version__,
            "description": "Submit, watch and control tasks of a running workerpool-tui.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@cache
def openapi_json() -> bytes:
    return msgspec.json.encode(openapi_document())
