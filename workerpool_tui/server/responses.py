"""What a handler returns: a status, a body and headers; plus the JSON error shape of SPEC §8."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from anyio.abc import ByteStream

JSON = b"application/json; charset=utf-8"
Headers = list[tuple[bytes, bytes]]


class ErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    candidates: list[str] | None = None
    """``ambiguous_id`` only: ids the prefix matches (at most ten)."""


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
        *,
        content_type: bytes = JSON,
        headers: Headers | None = None,
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
) -> Response:
    body = _encode(ErrorBody(ErrorDetail(code, message, candidates)))
    return Response(status, body, headers=headers, close=close)
