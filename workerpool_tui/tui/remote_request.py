"""One HTTP/1.1 request on a connection of its own, on the event loop (anyio + httptools).

The attached dashboard's actions go through here rather than through the blocking
client in a worker thread: measured under ``bench/dashboard.py --attached``, a thread
that reads its answer while the loop folds ~6,000 stream messages a second waits for the
interpreter lock at each step (a ``PATCH`` that a bare client had answered in 1.2 ms at
the median took tens of ms, and the pause key's p99 was 168-1,333 ms); on the loop the
answer is read at the next turn. The request's headers are the blocking client's
(:meth:`~workerpool_tui.client.api.ApiClient.headers`), and its answer is judged by the
same :func:`~workerpool_tui.client.api.decode_response`. The caller bounds the wait.
"""

from __future__ import annotations

import anyio
import httptools

from ..client.api import ApiClient, NotWorkerpool, ServerUrl, Unreachable, describe_oserror

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""An answer this large is not one of the API's (a page holds at most 1,000 tasks)."""
_RECV_BYTES = 1 << 16


class _Answer:
    """httptools' callbacks: the body, and whether the message is complete."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.complete = False

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_RESPONSE_BYTES:
            raise ValueError("an answer too large")

    def on_message_complete(self) -> None:
        self.complete = True


async def request(
    server: ServerUrl, token: str | None, method: str, target: str, body: bytes | None
) -> tuple[int, bytes]:
    """Send one request (``Connection: close``) and read its answer: ``(status, body)``.
    :class:`Unreachable` when no server answers, :class:`NotWorkerpool` when what
    answers does not speak HTTP."""
    headers = ApiClient(server, token).headers()
    headers["Host"] = server.authority
    headers["Connection"] = "close"
    if body is not None:
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        stream = await anyio.connect_tcp(server.host, server.port)
    except OSError as exc:  # anyio's "All connection attempts failed" has the cause
        raise Unreachable(server.url, describe_oserror(exc.__cause__ or exc)) from None
    async with stream:
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        try:
            await stream.send(head.encode("latin-1") + b"\r\n" + (body or b""))
            while not answer.complete:
                parser.feed_data(await stream.receive(_RECV_BYTES))
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
            what = (
                "the server closed the connection" if isinstance(exc, anyio.EndOfStream) else None
            )
            raise Unreachable(server.url, what or describe_oserror(exc)) from None
        except (httptools.HttpParserError, ValueError):
            raise NotWorkerpool(server.url, "it does not speak HTTP") from None
        return parser.get_status_code(), bytes(answer.body)
