"""``workerpool-tui attach [URL]``: the dashboard over a running server's API.

The URL and the token resolve as for every client command (``URL`` or ``--url``, else
``http://{server.host}:{server.port}``; ``--token``, else ``WORKERPOOL_TOKEN``, else
``server.auth_token``; :mod:`workerpool_tui.client.client`). No server yet is not an
error: the dashboard opens, says it is reconnecting, and connects when the server
appears; ``q`` leaves at once. A refused token ends it with status 1 and one line.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Mapping

from ..client.api import ClientUsageError, ServerUrl
from ..client.client import default_url, resolve_token
from ..config import Config
from .app import DashboardApp
from .remote import RemoteSource

EXIT_USAGE = 2


class AttachedApp(DashboardApp):
    """The dashboard as ``attach`` runs it: the same app over a :class:`RemoteSource`.

    Once mounted, the objects that live as long as the app (Textual's widgets, styles and
    caches, the modules: ~120,000 the collector tracks) are frozen out of the garbage
    collector's full passes: folding ~6,000 stream messages a second allocates enough to
    run one every second or two, and each walked them all. Measured with a
    ``gc.callbacks`` timer during ``bench/dashboard.py --attached``: full passes of 34-98
    ms CPU before, 5-44 ms after (see docs/benchmarks.md).
    """

    def on_mount(self) -> None:
        # (Textual also runs DashboardApp.on_mount: each class's handler is called.)
        gc.freeze()


def run_attach(args: argparse.Namespace, cfg: Config, environ: Mapping[str, str]) -> int:
    url = getattr(args, "target", None) or args.url or default_url(cfg)
    try:
        server = ServerUrl.parse(url)
        token = resolve_token(args, cfg, environ)
    except ClientUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = AttachedApp(bridge=RemoteSource(server, token), keymap=dict(cfg.keymap))
    code = app.run()
    if app.fatal_error is not None:
        print(f"error: {app.fatal_error}", file=sys.stderr)
    return code if code is not None else (app.return_code or 0)
