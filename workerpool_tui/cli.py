"""Command line: the dashboard (default), ``serve``, and the API client commands.

A bad option or config value prints one line naming it and exits 2, never a traceback.

The grammar (commands, options, help) is :mod:`.cli_parser`; here is what runs once it
parsed: an option given before the sub-command that does not apply to it is an error rather
than silently ignored, the config is loaded with the options over it, and the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from .cli_parser import (
    CLIENT_COMMANDS,
    CLIENT_OPTIONS,
    ENGINE_COMMANDS,
    ENGINE_OPTIONS,
    UsageError,
    build_parser,
)
from .config import Config, ConfigError, StoreConfig, load_config, undecodable
from .core.handlers import HandlerLoadError
from .store.sqlite import StoreError, StoreLocked

EXIT_USAGE = 2
STORE_HINT = 'use --store PATH for another store, or --store "" for memory only'
"""Added to "store … is in use by process N": how to run beside the process holding it."""
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


_POSITIONALS = {"type": "TYPE", "id": "ID"}
_PATHS = frozenset({"config"})
"""Options naming a file, which may hold any bytes the file system allows."""


def _check_args(args: argparse.Namespace, command: str) -> None:
    """Options given before the sub-command that do not apply to it, and text that is not
    UTF-8 (Python hands undecodable bytes over as surrogates), are usage errors."""
    if command in ENGINE_COMMANDS:
        foreign, owners = CLIENT_OPTIONS, "the client commands"
    else:
        foreign, owners = ENGINE_OPTIONS, "dashboard and serve"
    for dest, flag in foreign.items():
        if getattr(args, dest, None) not in (None, False):
            raise UsageError(f"{flag}: applies to {owners} only, not to {command}")
    for dest, value in vars(args).items():
        if not isinstance(value, str) or dest in _PATHS or not undecodable(value):
            continue
        if dest == "payload" and value.startswith("@"):
            continue  # a file name
        flag = _POSITIONALS.get(dest) or "--" + dest.rstrip("_").replace("_", "-")
        raise UsageError(f"{flag}: not valid UTF-8 text")


def _store_override(value: str) -> dict[str, Any]:
    """``--store``: a path, ``""`` or ``"auto"`` for ``store.path``; a PostgreSQL URL for
    ``store.url`` (SPEC §12) once the config has that key."""
    scheme = _URL_SCHEME.match(value)
    defaults = msgspec.structs.asdict(StoreConfig())
    has_url = "url" in defaults
    if scheme is None:
        # A path beats a URL from the file or the environment: reset it to its default.
        return {"path": value, "url": defaults["url"]} if has_url else {"path": value}
    if scheme.group(1).lower() not in _POSTGRES_SCHEMES:
        raise UsageError(
            f"--store: unsupported URL scheme {scheme.group(1)!r};"
            ' give a file path, "auto", "" for memory only, or a postgresql:// URL'
        )
    if not has_url:  # pragma: no cover - StoreConfig has url
        raise UsageError("--store: PostgreSQL stores are not supported by this build")
    return {"url": value}


def config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if getattr(args, "no_server", None):
        server["enabled"] = False
    if server:
        overrides["server"] = server
    if getattr(args, "log_level", None) is not None:
        overrides["logger"] = {"level": args.log_level}
    if getattr(args, "store", None) is not None:
        overrides["store"] = _store_override(args.store)
    return load_config(args.config, overrides=overrides)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "dashboard"
    _check_args(args, command)
    cfg = config_from_args(args)
    if command == "completion":
        from .completion import completion_script

        sys.stdout.write(completion_script(args.shell, build_parser(), cfg))
        return 0
    if command == "attach":
        from .tui.attach import run_attach

        return run_attach(args, cfg, os.environ)
    if command in CLIENT_COMMANDS:
        from .client import run_client

        return run_client(args, cfg, os.environ)
    if command == "serve":
        import anyio

        from .eventloop import backend_options
        from .logging import setup_logging
        from .runtime import serve

        options = backend_options(cfg.server.loop)  # ConfigError: uvloop asked, missing
        setup_logging(cfg.logger)
        return anyio.run(serve, cfg, backend_options=options)
    from .tui.run import run_dashboard

    return run_dashboard(cfg)


EXIT_JOIN_S = 2.0
"""At exit, how long threads still running get before the process leaves without them."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
    except StoreLocked as exc:
        print(f"error: {exc}; {STORE_HINT}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ConfigError, HandlerLoadError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    _leave_stuck_threads(code)
    return code


def _leave_stuck_threads(code: int) -> None:
    """Exit now if a thread outlives the run: only a sync handler that ignored its
    cancellation can (the engine abandoned it at shutdown), and the interpreter would
    otherwise wait for it forever at exit."""
    deadline = time.monotonic() + EXIT_JOIN_S
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            print(f"leaving a thread that did not stop: {thread.name}", file=sys.stderr)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
