"""``workerpool-tui attach [URL]``: the dashboard over a running server's API.

The URL and the token resolve as for every client command (``URL`` or ``--url``, else
``http://{server.host}:{server.port}``; ``--token``, else ``WORKERPOOL_TOKEN``, else
``server.auth_token``; :mod:`workerpool_tui.client.client`). No server yet is not an
error: the dashboard opens, says it is reconnecting, and connects when the server
appears; ``q`` leaves at once. A refused token ends it with status 1 and one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from ..client.api import ClientUsageError, ServerUrl
from ..client.client import default_url, resolve_token
from ..config import Config
from .app import DashboardApp
from .remote import RemoteSource

EXIT_USAGE = 2


def run_attach(args: argparse.Namespace, cfg: Config, environ: Mapping[str, str]) -> int:
    url = getattr(args, "target", None) or args.url or default_url(cfg)
    try:
        server = ServerUrl.parse(url)
        token = resolve_token(args, cfg, environ)
    except ClientUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = DashboardApp(bridge=RemoteSource(server, token), keymap=dict(cfg.keymap))
    code = app.run()
    if app.fatal_error is not None:
        print(f"error: {app.fatal_error}", file=sys.stderr)
    return code if code is not None else (app.return_code or 0)
