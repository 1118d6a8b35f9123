"""Which asyncio event loop runs ``workerpool-tui serve``: ``[server] loop``.

``"auto"`` (the default) takes uvloop (libuv; the ``fast`` extra, which ``make`` installs)
when it is installed and the standard loop otherwise; ``"uvloop"`` insists on it (a clear
error when it is missing); ``"asyncio"`` always takes the standard loop. The dashboard keeps
the standard loop whatever the setting (docs/configuration.md says why).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any, Literal

from .config import ConfigError

LoopChoice = Literal["auto", "asyncio", "uvloop"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopUnavailable(ConfigError):
    """``server.loop = "uvloop"`` without uvloop installed; the message is one line."""


def loop_factory(choice: LoopChoice) -> LoopFactory | None:
    """What makes the chosen loop, or ``None`` for the standard one."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise LoopUnavailable(
                'server.loop = "uvloop" but uvloop is not installed'
                " (pip install 'workerpool-tui[fast]')"
            ) from None
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def backend_options(choice: LoopChoice) -> dict[str, Any]:
    """``anyio.run``'s ``backend_options`` for the chosen loop."""
    factory = loop_factory(choice)
    return {} if factory is None else {"loop_factory": factory}


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop this code runs on (for the log)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
