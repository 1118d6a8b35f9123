from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """The engine runs on asyncio; every async test here runs on a real asyncio loop."""
    return "asyncio"
