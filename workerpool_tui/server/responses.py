"""What a handler returns: a status, a body and headers; plus the JSON error shape of SPEC §8."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from anyio.abc import ByteStream

JSON = b"application/json; charset=utf-8"
Headers = list[tuple[bytes, bytes]]

ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "the body is not JSON"),
    "invalid_request": (
        400,
        "a field is missing, unknown, of the wrong type or out of range; or malformed HTTP",
    ),
    "unknown_task_type": (400, "no such task type (shell_task: task.allow_shell is off)"),
    "unauthorized": (401, "missing or wrong bearer token (WWW-Authenticate: Bearer)"),
    "forbidden_host": (403, "without a token, a Host that is not this server's (DNS rebinding)"),
    "forbidden_origin": (403, "a WebSocket from a foreign Origin"),
    "not_found": (404, "no such endpoint, task or file"),
    "method_not_allowed": (405, "the path exists, the method does not (see Allow)"),
    "request_timeout": (408, "the request head or body did not arrive in time"),
    "already_finished": (409, "the task is final already"),
    "ambiguous_id": (409, "an id prefix matching several tasks (see candidates)"),
    "duplicate": (409, "a task with this unique_key is unfinished or in its window (existing_id)"),
    "blocked": (409, "the task waits for its parents (only a time can be skipped)"),
    "pool_conflict": (409, "min_workers would exceed max_workers"),
    "read_only": (409, "a schedule from the configuration file (change it there)"),
    "already_exists": (409, "a schedule with this name exists"),
    "body_too_large": (413, "the body exceeds server.max_body_bytes"),
    "unsupported_media_type": (415, "the body is not sent as application/json"),
    "queue_full": (429, "the queue holds task.queue_capacity tasks (see Retry-After)"),
    "headers_too_large": (431, "the request head exceeds 16 KiB"),
    "internal_error": (500, "a bug; logged, the server goes on"),
    "shutting_down": (503, "the server is stopping"),
    "too_many_connections": (503, "server.max_connections are all busy"),
    "store_unavailable": (503, "the store cannot be reached (see Retry-After)"),
}
"""Every error code the API answers with, its status and when (``docs/api.md`` and the
OpenAPI document list the same)."""


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    candidates: list[str] | None = None
    """``ambiguous_id`` only: ids the prefix matches (at most ten)."""
    existing_id: str | None = None
    """``duplicate`` only: the id of the task holding the unique key."""


class ErrorBody(msgspec.Struct, frozen=True):
    """``{"error": {"code", "message"}}``: every refusal of the API has this shape."""

    error: ErrorDetail


_encode = msgspec.json.Encoder().encode


class Response:
    """An HTTP answer, fully in memory (bodies of this API are small)."""

    __slots__ = ("body", "close", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: Headers | None = None,
        *,
        content_type: bytes = JSON,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers: Headers = headers if headers is not None else []
        self.close = close
        """Close the connection after this response."""


class Upgrade(Response):
    """A ``101 Switching Protocols``: after it is sent the connection belongs to ``run``,
    which gets the socket and any bytes the client sent after its request."""

    __slots__ = ("run",)

    def __init__(self, headers: Headers, run: Callable[[ByteStream, bytes], Awaitable[None]]):
        super().__init__(101, b"", content_type=b"", headers=headers)
        self.run = run


def json_response(
    status: int, value: Any, *, headers: Headers | None = None, close: bool = False
) -> Response:
    return Response(status, _encode(value), headers=headers, close=close)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Headers | None = None,
    close: bool = False,
    candidates: list[str] | None = None,
    existing_id: str | None = None,
) -> Response:
    body = _encode(ErrorBody(ErrorDetail(code, message, candidates, existing_id)))
    return Response(status, body, headers=headers, close=close)
