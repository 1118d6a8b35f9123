"""The OpenAPI document is built per server from its configuration (#15 §7); its bounds are
the ones the server enforces."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from server_helpers import make_config, running_server

from workerpool_tui.config import parse_duration
from workerpool_tui.core.wholenum import whole_floats_as_ints
from workerpool_tui.server.openapi_values import duration_pattern
from workerpool_tui.server.responses import ERROR_CODES
from workerpool_tui.server.schemas import PoolPatch, SubmitRequest

pytestmark = pytest.mark.anyio


async def document(**sections: Any) -> dict[str, Any]:
    async with running_server(make_config(**sections)) as server, httpx.AsyncClient() as c:
        doc: dict[str, Any] = (await c.get(f"http://127.0.0.1:{server.port}/openapi.json")).json()
    validate(doc)  # type: ignore[arg-type]
    return doc


async def test_without_a_token_no_security_and_403_forbidden_host() -> None:
    doc = await document()
    assert "securitySchemes" not in doc["components"]
    pool = doc["paths"]["/api/v1/pool"]["patch"]
    assert "security" not in pool
    assert "401" not in pool["responses"]
    assert (
        "403" in pool["responses"] and "forbidden_host" in pool["responses"]["403"]["description"]
    )


async def test_with_a_token_bearer_on_the_api_only() -> None:
    doc = await document(server={"auth_token": "t"})
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/api/v1/pool"]["get"]["security"] == [{"bearer": []}]
    ws = doc["paths"]["/api/v1/ws/tasks"]["get"]["security"]
    assert {"query_token": []} in ws
    assert doc["paths"]["/health"]["get"].get("security", []) == []
    assert "WWW-Authenticate" in doc["paths"]["/api/v1/pool"]["get"]["responses"]["401"]["headers"]
    assert "403" not in doc["paths"]["/health"]["get"]["responses"]


async def test_bounds_come_from_the_configuration() -> None:
    doc = await document(
        task={"max_concurrent_tasks": 7, "max_task_timeout": "1h", "default_task_timeout": "1m"},
        worker={"min_workers": 1, "max_workers": 7},
    )
    schemas = doc["components"]["schemas"]
    patch = schemas["PoolPatch"]["properties"]
    ints = [b for b in patch["max_workers"]["anyOf"] if b.get("type") == "integer"]
    assert ints == [{"type": "integer", "minimum": 1, "maximum": 7}]
    variants = schemas["SubmitRequest"]["oneOf"]
    names = {v["properties"]["type"]["const"] for v in variants}
    assert names == {"example_task", "long_running_task", "default_task"}  # no shell_task
    timeout = variants[0]["properties"]["timeout"]["anyOf"][0]
    assert timeout == {"type": "number", "exclusiveMinimum": 0, "maximum": 3600.0}
    tasks = schemas["BatchRequest"]["properties"]["tasks"]
    assert (tasks["minItems"], tasks["maxItems"]) == (1, 1000)
    assert schemas["ErrorDetail"]["properties"]["code"]["enum"] == list(ERROR_CODES)


async def test_every_status_is_documented_with_its_codes() -> None:
    doc = await document()
    submit = doc["paths"]["/api/v1/tasks"]["post"]["responses"]
    assert set(submit) >= {"201", "400", "403", "408", "413", "415", "429", "431", "503"}
    assert submit["201"]["headers"]["Location"]["required"] is True
    assert submit["429"]["headers"]["Retry-After"]["required"] is True
    codes = submit["400"]["content"]["application/json"]["schema"]["allOf"][1]
    assert set(codes["properties"]["error"]["properties"]["code"]["enum"]) == {
        "invalid_json",
        "invalid_request",
        "unknown_task_type",
    }
    static = doc["paths"]["/static/{name}"]["get"]["responses"]["200"]["content"]
    assert {"text/javascript", "text/css", "application/octet-stream"} <= set(static)
    openapi = doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]
    assert openapi == {"application/json": {"schema": {"type": "object"}}}


_NUMBER = st.one_of(
    st.integers(0, 10**9).map(str),
    st.decimals(0, 10**6, places=4, allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"0{0,3}[0-9]{1,7}(\.[0-9]{1,5})?", fullmatch=True),
)
_DURATION = st.tuples(
    st.sampled_from(["", " ", "\t"]),
    _NUMBER,
    st.sampled_from(["", " ", "\n"]),
    st.sampled_from(["", "ms", "s", "m", "h", "d", "x", "S"]),
    st.sampled_from(["", " "]),
).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(_DURATION, st.text(max_size=12)),
    maximum=st.sampled_from([1.0, 60.0, 3600.0, 86400.0, 172_800.0, 100_000.0]),
)
def test_duration_pattern_admits_what_the_server_takes(text: str, maximum: float) -> None:
    try:
        seconds = parse_duration(text)
        taken = 0 < seconds <= maximum
    except ValueError:
        taken = False
    admitted = bool(re.search(duration_pattern(maximum), text))
    if maximum % 86400 == 0:
        # A bound that is a whole number of every unit (the default, 24 h): exact.
        assert admitted == taken, (text, maximum)
    else:
        # Otherwise a unit larger than the bound ("0.01d" under 1 h) is left out: the
        # document never admits what the server refuses.
        assert taken or not admitted, (text, maximum)


def test_whole_floats_become_ints_only_where_an_int_is_expected() -> None:
    body = {"type": "t", "priority": 3.0, "max_retries": 2.0, "payload": {"x": 1.0}}
    fixed = whole_floats_as_ints(body, SubmitRequest)
    assert type(fixed["priority"]) is int and type(fixed["max_retries"]) is int
    assert type(fixed["payload"]["x"]) is float  # a payload's own numbers stay as sent
    assert whole_floats_as_ints({"min_workers": 2.5}, PoolPatch) == {"min_workers": 2.5}
    assert whole_floats_as_ints({"max_workers": None}, PoolPatch) == {"max_workers": None}


async def test_whole_floats_are_integers_on_the_wire() -> None:
    # JSON Schema (and so the document) counts 2.0 as an integer: the server takes it.
    async with running_server() as server, httpx.AsyncClient() as c:
        url = f"http://127.0.0.1:{server.port}"
        server.engine.pause()
        resp = await c.post(
            f"{url}/api/v1/tasks",
            json={
                "type": "long_running_task",
                "payload": {"steps": 2.0, "duration": 0.1},
                "priority": 3.0,
                "max_retries": 1.0,
            },
        )
        assert resp.status_code == 201, resp.text
        task = resp.json()
        assert (task["priority"], task["max_retries"]) == (3, 1)
        assert task["payload"] == {"steps": 2.0, "duration": 0.1}  # kept as sent
        half = await c.post(f"{url}/api/v1/tasks", json={"type": "default_task", "priority": 2.5})
        assert half.status_code == 400
        pool = await c.patch(f"{url}/api/v1/pool", json={"max_workers": 3.0, "paused": False})
        assert pool.status_code == 200 and pool.json()["max_workers"] == 3
        with anyio.fail_after(10):
            while True:  # the run converts steps=2.0 the same way (it completes)
                got = (await c.get(f"{url}/api/v1/tasks/{task['id']}")).json()
                if got["status"] != "pending" and got["status"] != "running":
                    break
                await anyio.sleep(0.02)
        assert got["status"] == "completed", got


def test_docs_list_every_error_code_with_its_status() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    for code, (status, _) in ERROR_CODES.items():
        assert f"| {status} | `{code}` |" in docs, code
