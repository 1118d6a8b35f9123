"""The live event stream (``GET /api/v1/ws/tasks``) over a plain socket, driven by wsproto.

Blocking, for a command-line client: :meth:`EventStream.messages` yields each decoded
server message as it arrives, answers pings, and ends when the server closes. Silence is
bounded: the server sends stats about once a second, so after ``idle_timeout_s`` without
a frame we ping, and after a second such period we give the connection up as lost.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import msgspec
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .api import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    ApiError,
    NotWorkerpool,
    ServerUrl,
    Unreachable,
    Unrecognised,
    decode_response,
    describe_oserror,
    is_workerpool,
)

WS_PATH = "/api/v1/ws/tasks"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""A snapshot holds at most 500 tasks; anything this large is not a server we know."""
IDLE_TIMEOUT_S = 15.0
_RECV_BYTES = 65536
_HTTP = b"HTTP/"


def handshake_request(server: ServerUrl, token: str | None) -> Request:
    """The upgrade request of ``GET /api/v1/ws/tasks`` (shared by the blocking client and
    the dashboard's async one, :mod:`workerpool_tui.tui.remote_stream`)."""
    headers = [(b"user-agent", b"workerpool-tui-client")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return Request(host=server.authority, target=server.prefix + WS_PATH, extra_headers=headers)


def refusal(status: int, body: bytes) -> ApiError | Unrecognised:
    """What a refused handshake means: the server's error (``ApiError``), or
    :class:`Unrecognised` when the answer is not a workerpool one."""
    try:
        decode_response(status, "", body)
    except ApiError as exc:
        return exc
    except Unrecognised as odd:
        return Unrecognised(odd.status, f"GET {WS_PATH}: {odd.what}")
    return ApiError(status, "upgrade_refused", "the server refused the upgrade")


class StreamLost(Exception):
    """The connection broke after the handshake (the server stopped or went silent)."""


class _ProtocolError(StreamLost):
    """What came from the server was not WebSocket over HTTP."""


class EventStream:
    def __init__(
        self,
        server: ServerUrl,
        token: str | None = None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.server = server
        self.token = token or None
        self._connect_timeout_s = connect_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._sock: socket.socket | None = None
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._closed = False
        self._accepted = False
        self._head = b""
        """The first bytes of the answer to the handshake (up to ``HTTP/``)."""
        self.close_code: int | None = None
        """The code of the server's close frame, once it sent one."""
        self.close_reason = ""

    def __enter__(self) -> EventStream:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Open the socket and complete the handshake; a refusal raises :class:`ApiError`."""
        try:
            sock = socket.create_connection(
                (self.server.host, self.server.port), timeout=self._connect_timeout_s
            )
        except OSError as exc:
            raise Unreachable(self.server.url, describe_oserror(exc)) from None
        self._sock = sock
        self._send(handshake_request(self.server, self.token))
        try:
            self._handshake()
        except _ProtocolError:
            raise NotWorkerpool(self.server.url, "it does not speak HTTP") from None
        except StreamLost as exc:
            raise Unreachable(self.server.url, str(exc)) from None

    def _handshake(self) -> None:
        reject: RejectConnection | None = None
        body = bytearray()
        while True:
            for event in self._receive_events():
                if isinstance(event, AcceptConnection):
                    self._accepted = True
                    assert self._sock is not None
                    self._sock.settimeout(self._idle_timeout_s)
                    return
                if isinstance(event, RejectConnection):
                    reject = event
                    if not event.has_body:
                        raise self._refused(reject, b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished and reject is not None:
                        raise self._refused(reject, bytes(body))

    def _refused(self, reject: RejectConnection, body: bytes) -> Exception:
        """A refused handshake: the server's error, or :class:`NotWorkerpool` when the
        answer is not a workerpool one (see :mod:`.api`)."""
        self.close()
        why = refusal(reject.status_code, body)
        if isinstance(why, ApiError):
            return why
        if is_workerpool(self.server, self._connect_timeout_s, READ_TIMEOUT_S):
            return ApiError(why.status, "unexpected_response", why.what)
        return NotWorkerpool(self.server.url, why.what)

    def messages(self) -> Iterator[dict[str, Any]]:
        """Each server message, decoded, until the server closes the stream."""
        parts: list[str] = []
        size = 0
        while not self._closed:
            for event in self._receive_events(idle_ping=True):
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > MAX_MESSAGE_BYTES:
                        self.close(code=1009)
                        raise StreamLost("a message from the server was too large")
                    if event.message_finished:
                        text, parts, size = "".join(parts), [], 0
                        try:
                            message = msgspec.json.decode(text)
                        except msgspec.DecodeError:
                            self.close(code=1007)
                            raise StreamLost("the server sent a message that is not JSON") from None
                        if isinstance(message, dict):
                            yield message
                elif isinstance(event, BytesMessage):
                    continue  # the protocol has no binary messages; ignore rather than fail
                elif isinstance(event, Ping):
                    self._send(event.response())
                elif isinstance(event, CloseConnection):
                    self._closed = True
                    self.close_code, self.close_reason = event.code, event.reason or ""
                    with contextlib.suppress(StreamLost):
                        self._send(event.response())
                    self._shutdown()
                    return

    def _receive_events(self, *, idle_ping: bool = False) -> Iterator[object]:
        """Read once from the socket and yield what wsproto makes of it."""
        sock = self._sock
        if sock is None:
            raise StreamLost("not connected")
        silent = 0
        while True:
            try:
                data = sock.recv(_RECV_BYTES)
                break
            except TimeoutError:
                silent += 1
                if not idle_ping or silent >= 2:
                    self._shutdown()
                    raise StreamLost("the server stopped answering") from None
                self._send(Ping(payload=b"workerpool-tui"))
            except OSError as exc:
                self._shutdown()
                raise StreamLost(describe_oserror(exc)) from None
        if not data:
            self._closed = True
            self._shutdown()
            if self._head and not self._accepted:
                raise _ProtocolError("the answer to the handshake was not HTTP")
            raise StreamLost("the server closed the connection")
        if not self._accepted and len(self._head) < len(_HTTP):
            # An answer that does not start like HTTP/1.x is not worth waiting for: the
            # handshake parser would wait for a blank line that may never come.
            self._head += data[: len(_HTTP) - len(self._head)]
            if not _HTTP.startswith(self._head[: len(_HTTP)]):
                self._shutdown()
                raise _ProtocolError("the answer to the handshake was not HTTP")
        try:
            self._ws.receive_data(data)
            yield from self._ws.events()
        except RemoteProtocolError as exc:
            self._shutdown()
            raise _ProtocolError(f"protocol error from the server: {exc}") from None

    def _send(self, event: Any) -> None:
        if self._sock is None:
            raise StreamLost("not connected")
        try:
            self._sock.sendall(self._ws.send(event))
        except LocalProtocolError as exc:
            raise StreamLost(str(exc)) from None
        except OSError as exc:
            self._shutdown()
            raise StreamLost(describe_oserror(exc)) from None

    def close(self, code: int = 1000) -> None:
        """Say goodbye if the stream is open (best effort), then drop the socket."""
        if self._sock is not None and not self._closed:
            self._closed = True
            try:
                self._sock.settimeout(1.0)
                self._sock.sendall(self._ws.send(CloseConnection(code=code)))
            except (OSError, LocalProtocolError):
                pass
        self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
