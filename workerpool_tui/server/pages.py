"""The web page's files and the WebSocket upgrade: the handlers of ``Api`` that answer with
something other than a JSON struct (a mixin, so that the route table names them like the
others)."""

from __future__ import annotations

import base64
import binascii
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import anyio
from anyio.abc import ByteStream
from wsproto.utilities import generate_accept_token

from ..config import ServerConfig
from .access import origin_allowed
from .broadcast import Broadcaster
from .limits import Limits
from .request import Request
from .responses import Response, Upgrade, error_response
from .routes import CONTENT_TYPES
from .websocket import WebSocketClient

_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def default_web_root() -> Traversable:
    return resources.files("workerpool_tui") / "web"


class PageHandlers:
    """``GET /``, ``GET /static/{name}`` and ``GET /api/v1/ws/tasks``."""

    cfg: ServerConfig
    limits: Limits
    broadcaster: Broadcaster
    web_root: Path | Traversable

    # ------------------------------------------------------------------ web page
    async def _file(self, name: str) -> Response:
        if not _STATIC_NAME.match(name) or ".." in name:
            return error_response(404, "not_found", f"no such file: {name}")
        resource = self.web_root / name
        try:
            body = await anyio.to_thread.run_sync(resource.read_bytes)
        except (OSError, ValueError):
            return error_response(404, "not_found", f"no such file: {name}")
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        ctype = CONTENT_TYPES.get(suffix, b"application/octet-stream")
        return Response(
            200,
            body,
            content_type=ctype,
            headers=[(b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff")],
        )

    async def index(self, request: Request) -> Response:
        return await self._file("index.html")

    async def static(self, request: Request, name: str) -> Response:
        return await self._file(name)

    # ------------------------------------------------------------------ WebSocket
    async def websocket(self, request: Request) -> Response:
        if not origin_allowed(
            request.header(b"origin"), request.header(b"host"), self.cfg.allowed_origins
        ):
            return error_response(403, "forbidden_origin", "this Origin may not connect")
        upgrade = (request.header(b"upgrade") or b"").lower()
        connection = (request.header(b"connection") or b"").lower()
        if upgrade != b"websocket" or b"upgrade" not in connection:
            return error_response(400, "invalid_request", "expected a WebSocket upgrade request")
        if request.header(b"sec-websocket-version") != b"13":
            return error_response(
                400,
                "invalid_request",
                "unsupported WebSocket version (13 needed)",
                headers=[(b"sec-websocket-version", b"13")],
            )
        key = request.header(b"sec-websocket-key") or b""
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if not valid_key:
            return error_response(400, "invalid_request", "bad Sec-WebSocket-Key")
        headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(key)),
        ]
        return Upgrade(headers, self._ws_session)

    async def _ws_session(self, stream: ByteStream, data: bytes) -> None:
        broadcaster = self.broadcaster
        client = WebSocketClient(stream, self.limits, resync_frames=broadcaster.resync_frames)
        with broadcaster.register(client):
            # Registered (and so subscribed) first: the snapshot then misses no event.
            client.push(await broadcaster.fresh_snapshot_frame())
            await client.run(data)
