"""Who may ask: the ``Host`` rule against DNS rebinding, the WebSocket ``Origin`` rule and the
bearer token. Each is decided on the request head, before any body is read.

**Host** (only without ``server.auth_token``). A page on ``attacker.example`` can rebind its
name to 127.0.0.1 and then call the API from the victim's browser: the browser believes it
talks to ``attacker.example`` and says so in ``Host``. Without a token the server therefore
answers only requests whose ``Host`` names it:

- ``localhost``, a loopback address (127.0.0.0/8, ``::1``), any port;
- a name or address listed in ``server.allowed_hosts`` (``"*"`` allows any);
- the configured ``server.host`` when it is not a wildcard (``0.0.0.0``, ``::``, ``""``);
- an IP address equal to the one the client connected to. This is how a server bound to
  ``0.0.0.0`` is reached by its address (``http://192.0.2.10:8080``): an IP literal in the
  URL involves no name lookup, so no rebinding page can produce it.

A request without ``Host`` (HTTP/1.0; never a browser) passes. Anything else is refused with
403 ``forbidden_host``. With a token set, any ``Host`` passes: a rebinding page cannot know
the token.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qs, urlsplit

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_CACHE_MAX = 256


def _hostname(host: bytes) -> str | None:
    """The host name of a ``Host`` value (lower case, IPv6 without brackets), or ``None``
    for a value that is not ``host[:port]``."""
    try:
        text = host.decode("ascii").strip()
        parts = urlsplit("//" + text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except (UnicodeDecodeError, ValueError):
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    name = parts.hostname
    return name.rstrip(".") if name else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (a configured host, or a ``Host`` name)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    ip = _ip(name)
    return ip is not None and ip.is_loopback


class HostPolicy:
    """The ``Host`` rule of the module docstring, for one server."""

    def __init__(self, *, bound_host: str, allowed: tuple[str, ...]) -> None:
        names = {a.strip().strip("[]").rstrip(".").lower() for a in allowed}
        self.any = "*" in names
        bound = bound_host.strip().strip("[]").rstrip(".").lower()
        if bound not in WILDCARD_HOSTS:
            names.add(bound)
        self._names = frozenset(n for n in names if n)
        self._verdicts: dict[bytes, bool] = {}
        """Verdicts of the rules that do not depend on the connection, per ``Host`` value."""
        self.passed: set[bytes] = set()
        """The ``Host`` values of :attr:`_verdicts` that pass whatever the connection: a
        request naming one is allowed without a call."""

    def allows(self, host: bytes | None, local_ip: str | None) -> bool:
        if host is None or self.any:
            return True
        verdict = self._verdicts.get(host)
        if verdict is None:
            name = _hostname(host)
            verdict = name is not None and (name in self._names or is_loopback(name))
            if len(self._verdicts) < _CACHE_MAX:
                self._verdicts[host] = verdict
                if verdict:
                    self.passed.add(host)
        if verdict:
            return True
        name = _hostname(host)
        if name is None or local_ip is None:
            return False
        ip, local = _ip(name), _ip(local_ip)
        return ip is not None and ip == local


def origin_allowed(origin: bytes | None, host: bytes | None, allowed: tuple[str, ...]) -> bool:
    """SPEC §11: no Origin (not a browser) passes; else the Origin's host and port must equal
    the ``Host`` header's, or the Origin must be listed in ``allowed_origins``."""
    if origin is None:
        return True
    text = origin.decode("latin-1").strip().rstrip("/").lower()
    if "*" in allowed or text in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    if host is None:
        return False
    try:
        o = urlsplit(text)
        if o.scheme not in ("http", "https") or not o.hostname:
            return False
        default = 443 if o.scheme == "https" else 80
        h = urlsplit("//" + host.decode("latin-1").strip().lower())
        return o.hostname == h.hostname and (o.port or default) == (h.port or default)
    except ValueError:
        return False


def token_matches(token: bytes, authorization: bytes | None, query: str | None = None) -> bool:
    """``Authorization: Bearer <token>`` (compared in constant time); with ``query`` (the
    WebSocket only) also ``?token=``."""
    if authorization is not None:
        scheme, _, credentials = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token):
            return True
    if query:
        for value in parse_qs(query).get("token", []):
            if hmac.compare_digest(value.encode(), token):
                return True
    return False
