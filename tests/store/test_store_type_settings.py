"""PATCH /api/v1/types settings survive a restart of the SQLite store; the config is the
default for what was never changed (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_helpers import make_engine, store_config

from workerpool_tui.config_types import TypeSettings
from workerpool_tui.core.errors import InvalidRequest

pytestmark = pytest.mark.anyio


def _limits(engine: object, name: str = "gated") -> tuple[int, str, bool]:
    limit = engine.gates.limits[name]  # type: ignore[attr-defined]
    return limit.concurrency, limit.rate_limit, limit.paused


async def test_patched_settings_survive_a_restart_over_the_config(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    types = {"gated": TypeSettings(concurrency=2)}
    engine, _ = make_engine(store_config(db, types=types), db)
    async with engine:
        assert _limits(engine) == (2, "", False)
        await engine.type_settings.patch("gated", concurrency=5, paused=True)
        await engine.type_settings.patch("gated", rate_limit="10/s")
        with pytest.raises(InvalidRequest):  # all or nothing: nothing written
            await engine.type_settings.patch("gated", concurrency=1, rate_limit="fast")
        assert _limits(engine) == (5, "10/s", True)
    side = json.loads((tmp_path / "tasks.db.types.json").read_text())
    assert side == {"gated": {"concurrency": 5, "rate_limit": "10/s", "paused": True}}

    # restart: the stored settings win over the config
    engine, _ = make_engine(store_config(db, types=types), db)
    async with engine:
        assert _limits(engine) == (5, "10/s", True)
        # back to the config's value: that override goes (a later config change applies)
        await engine.type_settings.patch("gated", concurrency=2, paused=False)
        assert _limits(engine) == (2, "10/s", False)
    side = json.loads((tmp_path / "tasks.db.types.json").read_text())
    assert side == {"gated": {"rate_limit": "10/s"}}

    # the config changed meanwhile: what was never overridden follows it
    engine, _ = make_engine(store_config(db, types={"gated": TypeSettings(concurrency=3)}), db)
    async with engine:
        assert _limits(engine) == (3, "10/s", False)
        await engine.type_settings.patch("gated", rate_limit="")
    assert json.loads((tmp_path / "tasks.db.types.json").read_text()) == {}
    engine, _ = make_engine(store_config(db, types={"gated": TypeSettings(concurrency=3)}), db)
    async with engine:
        assert _limits(engine) == (3, "", False)


async def test_a_type_without_a_config_table_keeps_its_setting_too(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        await engine.type_settings.patch("default_task", paused=True)
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        assert _limits(engine, "default_task") == (0, "", True)
