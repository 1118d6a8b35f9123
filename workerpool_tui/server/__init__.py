"""The side-car API: HTTP/1.1 (llhttp, through httptools) and WebSocket (wsproto) on raw anyio
sockets.

An adapter over the engine: it reads the engine through its bus and calls its plain
methods; the engine knows nothing of it.
"""

from __future__ import annotations

from .app import ApiServer, ServerStartError
from .limits import Limits

__all__ = ["ApiServer", "Limits", "ServerStartError"]
