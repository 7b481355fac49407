"""The in-process Lambda runtime behind moto: boto3 ``invoke`` runs the real handler here."""

from __future__ import annotations

import os

import boto3
import pytest

from infra.spec import ServalSpec
from tests.integration.local.helpers import create_function, invoke

pytestmark = pytest.mark.usefixtures("moto_server")


def test_invoke_runs_the_handler_with_its_own_environment_bound(spec: ServalSpec) -> None:
    # Given two functions whose environments name different tables, in a process that has none
    assert "TASKS_TABLE" not in os.environ
    base = spec.functions["api"].environment
    create_function("rt-echo", "echo", timeout=20, environment=base | {"TASKS_TABLE": "table-of-rt-echo"})
    other = create_function("rt-echo-2", "echo", environment=base | {"TASKS_TABLE": "table-of-rt-echo-2"})

    # When both are invoked through boto3
    response, payload = invoke("rt-echo", {"hello": "world"})
    _, other_payload = invoke(other, {})

    # Then each handler saw its own settings, the event, and a Lambda-like context
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert isinstance(payload, dict) and isinstance(other_payload, dict)
    assert payload["event"] == {"hello": "world"}
    assert payload["tasks_table"] == "table-of-rt-echo"
    assert other_payload["tasks_table"] == "table-of-rt-echo-2"
    assert payload["process_has_tasks_table"] is False
    context = payload["context"]
    assert context["function_name"] == "rt-echo"
    assert context["memory_limit_in_mb"] == "512"
    assert context["invoked_function_arn"].endswith(":function:rt-echo")
    assert len(context["aws_request_id"]) == 36
    assert 0 < context["remaining_ms"] <= 20_000
    # And the process environment is untouched afterwards
    assert "TASKS_TABLE" not in os.environ


def test_an_exception_is_a_function_error_with_the_runtime_payload() -> None:
    # Given a function whose handler raises
    create_function("rt-fail", "fail")

    # When it is invoked
    response, payload = invoke("rt-fail", {})

    # Then the invoke succeeds with FunctionError and the Python runtime's error shape
    assert "FunctionError" in response
    assert isinstance(payload, dict)
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "the handler failed on purpose"
    assert isinstance(payload["stackTrace"], list) and payload["stackTrace"]
    assert "fixture_handlers.py" in payload["stackTrace"][-1]


def test_runtime_failures_have_the_runtime_error_types() -> None:
    # Given functions with a missing module, a missing entrypoint and an unserializable result
    create_function("rt-no-module", "missing")
    create_function("rt-unserializable", "unserializable")
    boto3.client("lambda").update_function_configuration(
        FunctionName="rt-no-module", Handler="nowhere.handler"
    )

    # When they are invoked
    _, import_error = invoke("rt-no-module", {})
    _, marshal_error = invoke("rt-unserializable", {})

    # Then each reports what the AWS runtime reports
    assert isinstance(import_error, dict) and import_error["errorType"] == "Runtime.ImportModuleError"
    assert isinstance(marshal_error, dict) and marshal_error["errorType"] == "Runtime.MarshalError"


def test_a_run_past_the_timeout_is_reported_as_timed_out() -> None:
    # Given a function with a 1 s timeout whose handler takes 1.5 s
    create_function("rt-slow", "slow", timeout=1)

    # When it is invoked
    response, payload = invoke("rt-slow", {})

    # Then the caller gets Lambda's timeout error, not the late result
    assert "FunctionError" in response
    assert isinstance(payload, dict)
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_one_function_runs_one_invocation_at_a_time_like_one_execution_environment() -> None:
    # Given two functions
    create_function("rt-probe", "overlap_probe")
    create_function("rt-probe-2", "overlap_probe")

    # When eight threads invoke each at once
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda name: invoke(name, {}), ["rt-probe", "rt-probe-2"] * 8))

    # Then every invocation succeeded, and no two invocations of one function overlapped
    # (handlers keep per-invocation state in module objects, as on Lambda)
    assert all("FunctionError" not in response for response, _ in results)
    assert {payload["most"] for _, payload in results} == {1}
