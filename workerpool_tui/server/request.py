"""What a connection hands the application: one parsed :class:`Request`, the
:class:`Application` protocol, and the :class:`Phase` a connection is in."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

from .responses import Headers, Response


def _no_address() -> str | None:
    return None


class Request:
    """One parsed request. Header names are lower case (the reader normalises them)."""

    __slots__ = (
        "body",
        "headers",
        "local_ip",
        "method",
        "path",
        "query",
        "refusal",
        "route",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        local_ip: Callable[[], str | None] = _no_address,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.local_ip = local_ip
        """The address the client connected to (computed on demand)."""
        self.route: Any = None
        """What the application matched on the head, for its handler to reuse."""
        self.refusal: Response | None = None
        """The answer given on the head alone (the body was not read)."""

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Application(Protocol):
    def refuse_head(self, request: Request) -> Response | None:
        """An answer decided on the request head alone (its body is empty still), or
        ``None`` to read the body and call the application."""

    async def __call__(self, request: Request) -> Response:
        """The answer to a complete request."""


class Phase(enum.Enum):
    """What a connection waits for; the reaper's verdict on a missed deadline depends on it."""

    WAIT = "waiting for a request"
    HEAD = "receiving a request head"
    BODY = "receiving a request body"
    BUSY = "handling a request"
    WRITE = "sending a response"


WAITING_ON_CLIENT = frozenset({Phase.WAIT, Phase.HEAD, Phase.BODY})
"""Phases in which a connection only waits for its client: at the connection cap the one
that has waited longest is cut to make room (see ``ApiServer``)."""
