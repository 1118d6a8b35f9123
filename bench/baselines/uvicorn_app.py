"""The baseline of ``bench/http.py``: a minimal ASGI app for ``uvicorn --http h11`` that
answers the same JSON bodies as our server without doing any work (benchmark only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

HEALTH = b'{"status":"ok","uptime_s":1.0,"version":"0.1.0"}'
TASK = (
    b'{"id":"0123456789abcdef","type":"default_task","status":"pending","payload":{"n":1},'
    b'"priority":0,"progress":0.0,"message":null,"result":null,"error":null,"attempts":0,'
    b'"max_retries":0,"timeout_s":300.0,"created_at":"2026-01-01T00:00:00.000Z",'
    b'"started_at":null,"finished_at":null,"worker":null,"retry_of":null,"logs":[]}'
)
JSON = (b"content-type", b"application/json; charset=utf-8")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        more = True
        while more:  # read the whole body, as a real endpoint must
            message = await receive()
            more = message.get("more_body", False)
        status, body = 201, TASK
        headers = [JSON, (b"location", b"/api/v1/tasks/0123456789abcdef")]
    else:
        status, body = 200, HEALTH
        headers = [JSON]
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
