"""Fuzzing every operation of the OpenAPI document through the local gateway with a real token.

Schemathesis reads ``docs/openapi.json`` (a test keeps it equal to the code), so a route added
later is fuzzed without touching this file. For each operation it generates valid and invalid
path, query, header and body values (a fixed number of examples, derandomized, so a run is
bounded and repeatable) and sends them as an admin, in a real project where the path names one.
Every answer must:

* never be a 5xx;
* have a status the document lists for that operation;
* match the documented schema of that status: for a 4xx, the error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, demo_token, http

pytestmark = pytest.mark.e2e

EXAMPLES = 10  # per operation, valid and invalid inputs together
SCHEMA = schemathesis.openapi.from_dict(json.loads((ROOT / "docs" / "openapi.json").read_text()))
SCHEMA.config.generation.update(
    modes=["positive", "negative"], max_examples=EXAMPLES, deterministic=True, no_shrink=True
)
LABELS = {"controls": [{"name": "c", "type": "classification", "classes": [{"name": "a"}, {"name": "b"}]}]}


@dataclass(frozen=True)
class Target:
    stack: DevStack
    token: str
    project_id: str


@pytest.fixture(scope="module")
def target(dev_stack: DevStack) -> Iterator[Target]:
    """An admin's token, and a project with a task, for the operations whose path names a project."""
    token = demo_token(dev_stack, "admin")
    status, project = http(
        dev_stack,
        "POST",
        "/projects",
        token,
        {"name": "fuzz", "media_types": ["text"], "label_config": LABELS},
    )
    assert status == 201, project
    status, _ = http(
        dev_stack, "POST", f"/projects/{project['project_id']}/tasks", token, [{"data": {"text": "x"}}]
    )
    assert status == 201
    yield Target(dev_stack, str(token), str(project["project_id"]))


def _is_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message", "details"}
        and isinstance(body["error"]["code"], str)
        and isinstance(body["error"]["message"], str)
    )


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_reaches_a_5xx_and_every_error_is_the_documented_envelope(
    case: schemathesis.Case, target: Target
) -> None:
    # Given a generated request, in the real project where the path names one
    if "project_id" in (case.path_parameters or {}):
        case.path_parameters = {**(case.path_parameters or {}), "project_id": target.project_id}
    # When it is sent through the gateway with an admin's token
    response = case.call(
        base_url=target.stack.api_url, headers={"Authorization": f"Bearer {target.token}"}, timeout=60
    )
    # Then it is no 5xx, its status is documented, and its body is the documented one
    case.validate_response(
        response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )
    if 400 <= response.status_code < 500:
        assert _is_envelope(response.json()), response.text[:500]
