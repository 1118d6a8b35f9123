"""A small blocking client for the HTTP API (SPEC §8) on the standard library's ``http.client``.

One keep-alive connection per :class:`ApiClient`. Every failure becomes one of two
exceptions the command layer maps to an exit status: :class:`Unreachable` (no workerpool
server answered: exit 3) and :class:`ApiError` (the server said no: exit 1, with its
message).

How an answer is known to come from workerpool-tui (something else may hold the port, e.g.
``python -m http.server``): a refusal carries the JSON error envelope of SPEC §8,
``{"error": {"code": "...", "message": "..."}}``, and a success is a JSON object with the
fields the command needs. Any other answer is checked once against ``GET /health``, which a
workerpool server answers ``{"status": "ok", "uptime_s": <number>, "version": "..."}``
(open even when a token is required): if that does not answer so either,
:class:`NotWorkerpool` (exit 3) says that no workerpool server answers at the URL; if it
does (a proxy in between, say), the odd answer is reported as the server's refusal.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec

CONNECT_TIMEOUT_S = 5.0
"""How long to wait for the TCP connection before declaring the server unreachable."""
READ_TIMEOUT_S = 60.0
"""How long one response may take (a cancel waits for the handler to stop)."""
_USER_AGENT = "workerpool-tui-client"
_RETRYABLE = frozenset({"GET", "DELETE"})
"""Requests that may be sent again on a fresh connection (repeating them changes nothing)."""


class ClientUsageError(Exception):
    """Bad client usage (a malformed ``--url``, a payload that is not JSON): exit 2."""


class Unreachable(Exception):
    """No server answered at the URL: exit 3."""

    def __init__(self, url: str, reason: str, text: str | None = None) -> None:
        super().__init__(
            text or f"no server at {url} — start one with `workerpool-tui serve` ({reason})"
        )
        self.url = url
        self.reason = reason


class NotWorkerpool(Unreachable):
    """Something answered at the URL, but not a workerpool server: exit 3 too."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            url,
            reason,
            f"no workerpool server answers at {url} — something else does ({reason});"
            " check --url or --port",
        )


class ApiError(Exception):
    """The server refused the request; ``code`` and ``message`` come from its error body
    (``candidates``: the ids an ambiguous id prefix matches)."""

    def __init__(
        self, status: int, code: str, message: str, candidates: list[str] | None = None
    ) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.candidates = candidates or []


class Unrecognised(Exception):
    """An answer without the shape of a workerpool answer (see the module docstring)."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(what)
        self.status = status
        self.what = what


@dataclass(frozen=True)
class ServerUrl:
    """A parsed ``--url``: where to connect and the path prefix the API lives under."""

    url: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> ServerUrl:
        parts = urlsplit(url.strip())
        if parts.scheme != "http":
            raise ClientUsageError(f"--url: expected http://HOST:PORT, got {url!r}")
        try:
            port = parts.port or 80
        except ValueError:
            raise ClientUsageError(f"--url: bad port in {url!r}") from None
        if not parts.hostname:
            raise ClientUsageError(f"--url: no host in {url!r}")
        if parts.query or parts.fragment:
            raise ClientUsageError(f"--url: expected no query or fragment in {url!r}")
        return cls(
            url=url.strip().rstrip("/"),
            host=parts.hostname,
            port=port,
            prefix=parts.path.rstrip("/"),
        )

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def task_path(task_id: str) -> str:
    """The path of one task; the id is quoted so that no input can change the route."""
    return f"/api/v1/tasks/{quote(task_id, safe='')}"


class ApiClient:
    """Blocking JSON-over-HTTP calls against one server, on one keep-alive connection."""

    def __init__(
        self,
        server: ServerUrl,
        token: str | None = None,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.server = server
        self.token = token or None
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def headers(self) -> dict[str, str]:
        out = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        conn = http.client.HTTPConnection(
            self.server.host, self.server.port, timeout=self._connect_timeout_s
        )
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise Unreachable(self.server.url, describe_oserror(exc)) from None
        assert conn.sock is not None
        conn.sock.settimeout(self._read_timeout_s)
        self._conn = conn
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        query: dict[str, str | int] | None = None,
        expect: tuple[str, ...] = (),
    ) -> Any:
        """Send one request; return the decoded JSON object of a 2xx answer, which must
        hold the ``expect`` fields.

        A keep-alive connection the server closed while idle is reopened and the request
        sent again, but only for GET and DELETE: a POST is never sent twice.
        """
        target = self.server.prefix + path
        if query:
            target += "?" + urlencode(query)
        headers = self.headers()
        data: bytes | None = None
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connect()
            try:
                conn.request(method, target, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 1 and method in _RETRYABLE:
                    continue
                raise Unreachable(self.server.url, describe_oserror(exc)) from None
            except http.client.HTTPException:
                self.close()
                raise NotWorkerpool(self.server.url, "it does not speak HTTP") from None
            except OSError as exc:
                self.close()
                raise Unreachable(self.server.url, describe_oserror(exc)) from None
            if response.will_close:
                self.close()
            try:
                return decode_response(response.status, response.reason, raw, expect)
            except Unrecognised as odd:
                raise self.identify(odd, f"{method} {path}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def identify(self, odd: Unrecognised, request: str) -> Exception:
        """What to raise for an answer without a workerpool shape: :class:`NotWorkerpool`
        unless ``GET /health`` shows a workerpool server (then an :class:`ApiError`)."""
        if is_workerpool(self.server, self._connect_timeout_s, self._read_timeout_s):
            return ApiError(odd.status, "unexpected_response", f"{request}: {odd.what}")
        return NotWorkerpool(self.server.url, f"{request}: {odd.what}")


def describe_oserror(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)


def decode_response(status: int, reason: str, raw: bytes, expect: tuple[str, ...] = ()) -> Any:
    """The JSON object of a 2xx answer holding the ``expect`` fields; :class:`ApiError`
    for a workerpool refusal; :class:`Unrecognised` for anything else."""
    try:
        data: Any = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        data = None
    if 200 <= status < 300:
        if not isinstance(data, dict):
            raise Unrecognised(status, f"HTTP {status} with a body that is not a JSON object")
        missing = [key for key in expect if key not in data]
        if missing:
            raise Unrecognised(status, f"HTTP {status} without {', '.join(missing)}")
        return data
    err = data.get("error") if isinstance(data, dict) else None
    if (
        isinstance(err, dict)
        and isinstance(err.get("code"), str)
        and isinstance(err.get("message"), str)
    ):
        candidates = err.get("candidates")
        ids = [str(c) for c in candidates] if isinstance(candidates, list) else None
        raise ApiError(status, err["code"], err["message"], ids)
    raise Unrecognised(status, f"HTTP {status} {reason}".rstrip())


HEALTH_PATH = "/health"


def is_workerpool(server: ServerUrl, connect_timeout_s: float, read_timeout_s: float) -> bool:
    """Whether ``GET /health`` at ``server`` answers as a workerpool server does, on a
    connection of its own (the caller's may be closed or in any state)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=connect_timeout_s)
    try:
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(read_timeout_s)
        conn.request("GET", server.prefix + HEALTH_PATH, headers={"User-Agent": _USER_AGENT})
        response = conn.getresponse()
        raw = response.read()
        if response.status != 200:
            return False
        data = msgspec.json.decode(raw)
    except (OSError, http.client.HTTPException, msgspec.DecodeError):
        return False
    finally:
        conn.close()
    return (
        isinstance(data, dict)
        and data.get("status") == "ok"
        and isinstance(data.get("uptime_s"), (int, float))
        and isinstance(data.get("version"), str)
    )
