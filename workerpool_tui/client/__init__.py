"""The command-line client: ``submit``, ``list``, ``get``, ``cancel``, ``stats``, ``watch``.

It talks to a running server over the HTTP API and the WebSocket (SPEC §8) with the
standard library's ``http.client`` and ``wsproto`` on a socket; it never imports the engine.
"""

from __future__ import annotations

from .client import run_client

__all__ = ["run_client"]
