"""schemathesis against a real ``workerpool-tui serve`` (#15 §7): the OpenAPI document it
serves must describe it exactly. Every check runs, on every operation, then the stateful
run follows the document's links (submit → get / cancel / retry); once without a token and
once with one (then bearer auth is declared, and enforced: the ``ignored_auth`` check).

Bounded and deterministic: a fixed number of examples per operation, derandomized.

Two things are left out, each for a reason:

- the WebSocket operation: a request/response client cannot follow a ``101`` (it is covered
  by ``test_server_websocket.py`` with a real WebSocket client);
- the ``use_after_free`` check, whose premise is that ``DELETE`` removes a resource: here
  ``DELETE /api/v1/tasks/{id}`` cancels the task (SPEC §8), which stays readable with status
  ``cancelled`` (``test_server_http_api.py`` checks that).
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from live_server import LiveServer

from workerpool_tui.server.routes import WS_PATH

TOKEN = "schemathesis-token"
EXAMPLES = 50
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _load(server: LiveServer) -> schemathesis.BaseSchema:
    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    config = schemathesis.Config.from_dict(
        {
            "headers": headers,
            "request-timeout": 10,
            "generation": {"max-examples": EXAMPLES, "deterministic": True},
            "checks": {"use_after_free": {"enabled": False}},
            # A submission can be schema-valid and still refused with 400 for what a
            # schema cannot say: a depends_on id that names no task, a "$N" that does not
            # name an earlier task of the batch, delay and run_at together, a unique_key
            # repeated in one batch (docs/scheduling.md).
            "operations": [
                {
                    "include-path": ["/api/v1/tasks", "/api/v1/tasks/batch"],
                    "include-method": "POST",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                "2xx",
                                "400",
                                "401",
                                "403",
                                "404",
                                "409",
                                "429",
                                "5xx",
                            ]
                        }
                    },
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)
    return schema.exclude(path=WS_PATH)


@pytest.fixture(scope="module", params=["no-token", "token"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    token = TOKEN if request.param == "token" else ""
    settings = {"WORKERPOOL__TASK__QUEUE_CAPACITY": "50"}
    with LiveServer(tmp_path_factory.mktemp("st"), token=token, settings=settings) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(served: LiveServer) -> schemathesis.BaseSchema:
    return _load(served)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=WS_PATH)

# One test runs every operation as a sub-test, so its time grows with the API (50 examples
# each): the suite's 60 s per test is too short on a loaded 2-core machine, and a timeout
# that fires in the middle of Hypothesis' data generation is reported as "inconsistent data
# generation", which hides the cause.
RUN_TIMEOUT_S = 600


@pytest.mark.timeout(RUN_TIMEOUT_S)
@schema.parametrize()
@SETTINGS
# The submission schema (with the time-and-order fields) takes hypothesis a while to
# fill on a shared 2-core machine; a stuck server still fails at the request timeout.
@pytest.mark.timeout(240)
def test_every_operation(case: schemathesis.Case) -> None:
    case.call_and_validate()


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_stateful_links(served: LiveServer) -> None:
    machine = _load(served).as_state_machine()
    machine.run(
        settings=hypothesis.settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
