from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import Cli
from live_server import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``serve`` for a test module (no token)."""
    with LiveServer(tmp_path_factory.mktemp("serve")) as live:
        yield live


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("serve-auth"), token="s3cret-token") as live:
        yield live


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """The CLI's ``main()`` in this process, its output captured."""
    return Cli(capsys)
