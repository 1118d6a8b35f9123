"""Task types (SPEC §5, §11): built-ins, handlers from config and entry points, load errors."""

from __future__ import annotations

import hashlib
import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from enginekit import make_config, make_engine, submit, wait_final, wait_until

from workerpool_tui.config import ConfigError
from workerpool_tui.core import Engine, TaskStatus
from workerpool_tui.core.builtin import canonical_json
from workerpool_tui.core.handlers import HandlerLoadError, build_registry, load_handler

pytestmark = pytest.mark.anyio


# ------------------------------------------------------------------ built-ins
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"b": 1, "a": [1, 2, {"z": None, "y": True}]},
        {"text": "é ✓ 東京", "n": -1.5},
    ],
)
async def test_default_task_returns_size_and_sha256_of_canonical_json(
    payload: dict[str, Any],
) -> None:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = canonical.encode("utf-8")
    assert canonical_json(payload) == body
    async with make_engine() as engine:
        task = await submit(engine, "default_task", payload)
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    assert task.result == {
        "payload": payload,
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


async def test_long_running_task_reports_every_step_and_is_cancellable() -> None:
    async with make_engine() as engine:
        quick = await submit(engine, "long_running_task", {"duration": 0.05, "steps": 5})
        await wait_final(engine, quick)
        assert quick.status is TaskStatus.COMPLETED
        assert quick.result == {"duration": 0.05, "steps": 5}
        assert quick.message == "step 5/5"

        slow = await submit(engine, "long_running_task", {"duration": 300, "steps": 10000})
        await wait_until(engine, lambda: slow.progress > 0)
        await engine.cancel(slow.id)
        assert slow.status is TaskStatus.CANCELLED
        assert 0 < slow.progress < 100


async def test_every_builtin_type_has_a_description_and_the_payload_types_a_schema() -> None:
    async with make_engine() as engine:
        names = engine.types.names()
        assert names == ["default_task", "example_task", "long_running_task"]
        for t in engine.types:
            assert t.description
        schema = engine.types.get("long_running_task").payload_schema()  # type: ignore[union-attr]
        assert schema is not None
        assert "LongRunningPayload" in json.dumps(schema)


# ------------------------------------------------------------------ user handlers
def _write_module(tmp_path: Path, body: str) -> str:
    name = f"user_handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    return name


HANDLERS_SOURCE = """
    import anyio

    async def double(ctx, payload):
        '''Doubles x.

        More words that are not part of the description.'''
        ctx.progress(50, "half")
        ctx.log(f"doubling {payload['x']}")
        await anyio.sleep(0)
        return {"x": payload["x"] * 2, "attempt": ctx.attempt}

    def shout(ctx, payload):
        return payload["word"].upper()

    class Namespace:
        @staticmethod
        async def nested(ctx, payload):
            return "nested"

    NOT_CALLABLE = 42
"""


async def test_user_handlers_from_config_run_async_and_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _write_module(tmp_path, HANDLERS_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = make_config(
        task={
            "handlers": {
                "double": f"{module}:double",
                "shout": f"{module}:shout",
                "nested": f"{module}:Namespace.nested",
                # A config handler may replace a built-in of the same name.
                "example_task": f"{module}:shout",
            }
        }
    )
    async with Engine(cfg) as engine:
        assert engine.types.get("double").description == "Doubles x."  # type: ignore[union-attr]
        assert engine.types.get("shout").is_async is False  # type: ignore[union-attr]
        double = await submit(engine, "double", {"x": 21})
        shout = await submit(engine, "shout", {"word": "hey"})
        nested = await submit(engine, "nested")
        replaced = await submit(engine, "example_task", {"word": "mine"})
        for task in (double, shout, nested, replaced):
            await wait_final(engine, task)
    assert double.result == {"x": 42, "attempt": 1}
    assert double.logs is not None and list(double.logs) == ["doubling 21"]
    assert shout.result == "HEY"
    assert nested.result == "nested"
    assert replaced.result == "MINE"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("{module}", "expected 'package.module:function'"),
        (":double", "expected 'package.module:function'"),
        ("no_such_module_zz9:double", "cannot import 'no_such_module_zz9'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:Namespace.missing", "has no attribute 'Namespace.missing'"),
        ("{module}:NOT_CALLABLE", "42 is not callable"),
        ("{broken}:f", "cannot import"),
    ],
)
def test_bad_handler_target_is_a_load_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, words: str
) -> None:
    module = _write_module(tmp_path, HANDLERS_SOURCE)
    broken = _write_module(tmp_path, "raise RuntimeError('import-time failure')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    target = target.format(module=module, broken=broken)
    with pytest.raises(HandlerLoadError, match=words) as info:
        load_handler("mine", target)
    message = str(info.value)
    assert message.startswith("task.handlers.mine: ")
    assert "\n" not in message
    # Building an engine from such a config fails the same way, before anything runs.
    if ":" in target:
        cfg = make_config(task={"handlers": {"mine": target}})
        with pytest.raises(HandlerLoadError, match=r"task\.handlers\.mine"):
            Engine(cfg)
    else:
        with pytest.raises(ConfigError, match=r"task\.handlers\.mine"):
            make_config(task={"handlers": {"mine": target}})


async def test_handlers_from_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _write_module(tmp_path, HANDLERS_SOURCE)
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[workerpool_tui.tasks]\nep_double = {module}:double\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = build_registry(handlers={}, allow_shell=False)
    assert "ep_double" in reg
    assert "ep_double" not in build_registry(handlers={}, allow_shell=False, entry_points_too=False)
    async with Engine(make_config()) as engine:
        task = await submit(engine, "ep_double", {"x": 5})
        await wait_final(engine, task)
    assert task.result == {"x": 10, "attempt": 1}


def test_a_broken_entry_point_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "brokenep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenep\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[workerpool_tui.tasks]\nbad_ep = no_such_module_qq7:f\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HandlerLoadError, match="entry point 'bad_ep'"):
        build_registry(handlers={}, allow_shell=False)
