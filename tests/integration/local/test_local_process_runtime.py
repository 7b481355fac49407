"""Lambda's process model in the local stack: warm worker processes per function, each with its own environment."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from bench.metering import metered
from infra.local import patches
from infra.local.console import FunctionLogs
from infra.local.moto_server import MotoServer, process_environment
from infra.local.stack import worker_environment
from infra.local.workers import ProcessRuntime, worker_base_environment
from infra.spec import ServalSpec
from tests.integration.local.helpers import create_function, invoke


@pytest.fixture
def runtime(moto_server: MotoServer) -> Iterator[ProcessRuntime]:
    """Given invocations handed to worker processes, as the local stack runs them."""
    the_runtime = ProcessRuntime(
        base_env=worker_base_environment(process_environment(moto_server.port)),
        concurrency={"pr-concurrent": 3},
    )
    patches.use_runtime(the_runtime)
    yield the_runtime
    patches.use_runtime(None)
    the_runtime.close()


def test_each_function_runs_in_its_own_warm_process_with_its_own_environment(
    runtime: ProcessRuntime, spec: ServalSpec
) -> None:
    # Given two functions whose environments name different tables
    base = spec.functions["api"].environment
    create_function("pr-a", "whoami", environment=base | {"TASKS_TABLE": "table-a"})
    create_function("pr-b", "whoami", environment=base | {"TASKS_TABLE": "table-b"})

    # When each is invoked twice
    _, a1 = invoke("pr-a", {})
    _, a2 = invoke("pr-a", {})
    _, b1 = invoke("pr-b", {})

    # Then each ran in a process of its own, not this one, with its variables in os.environ
    assert a1["pid"] != os.getpid() and b1["pid"] not in (os.getpid(), a1["pid"])
    assert a1["tasks_table_in_environ"] == "table-a"
    assert b1["tasks_table_in_environ"] == "table-b"
    assert a1["lambda_name_in_environ"] == "pr-a"
    # And it talks to the moto server over HTTP, like a Lambda to AWS
    assert a1["endpoint"] == process_environment(int(os.environ["MOTO_PORT"]))["AWS_ENDPOINT_URL"]
    # And the second invocation found the environment warm (same process, module state kept)
    assert a2["pid"] == a1["pid"] and a2["invocations_here"] == 2
    # And this process's environment never received a function's variables
    assert os.environ.get("TASKS_TABLE") is None


def test_one_function_serves_concurrent_invocations_up_to_its_concurrency(runtime: ProcessRuntime) -> None:
    # Given a function of concurrency 3 whose invocation takes a while
    create_function("pr-concurrent", "whoami")
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(5)

    def call() -> None:
        barrier.wait()
        results.append(invoke("pr-concurrent", {"sleep": 0.5})[1])

    # When five invocations arrive at once
    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then all succeed, served by at most three processes (the others waited for a free one)
    assert len(results) == 5
    pids = {r["pid"] for r in results}
    assert 2 <= len(pids) <= 3
    assert runtime.workers_started("pr-concurrent") <= 3


def test_a_crash_fails_only_its_invocation_and_the_next_gets_a_fresh_process(runtime: ProcessRuntime) -> None:
    # Given a function whose handler exits the process, and a healthy one
    create_function("pr-crash", "crash")
    create_function("pr-healthy", "whoami")
    _, before = invoke("pr-healthy", {})

    # When the crashing one is invoked
    response, payload = invoke("pr-crash", {})

    # Then that invocation fails as Lambda reports a runtime exit, and nothing else is affected
    assert "FunctionError" in response
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    _, after = invoke("pr-healthy", {})
    assert after["pid"] == before["pid"]
    # And the function can be invoked again (a new environment, which crashes again)
    again, _ = invoke("pr-crash", {})
    assert "FunctionError" in again


def test_a_run_past_the_timeout_is_killed_and_the_function_recovers(runtime: ProcessRuntime) -> None:
    # Given a function with a 1 s timeout
    create_function("pr-timeout", "whoami", timeout=1)
    _, warm = invoke("pr-timeout", {})

    # When an invocation runs for 3 s
    response, payload = invoke("pr-timeout", {"sleep": 3})

    # Then it is reported as timed out, its process is gone, and the next one runs in a new process
    assert "FunctionError" in response
    assert payload["errorType"] == "Sandbox.Timedout"
    _, next_one = invoke("pr-timeout", {})
    assert next_one["pid"] != warm["pid"]
    assert next_one["invocations_here"] == 1


def test_a_changed_configuration_gets_new_environments(runtime: ProcessRuntime) -> None:
    # Given a warm function
    create_function("pr-config", "whoami", environment={"TASKS_TABLE": "before"})
    _, first = invoke("pr-config", {})

    # When its environment changes
    boto3.client("lambda").update_function_configuration(
        FunctionName="pr-config", Environment={"Variables": {"TASKS_TABLE": "after"}}
    )
    _, second = invoke("pr-config", {})

    # Then the new configuration runs in a new process
    assert second["tasks_table_in_environ"] == "after"
    assert second["pid"] != first["pid"]


def test_after_close_invocations_fail_cleanly(runtime: ProcessRuntime) -> None:
    # Given a stopped runtime
    create_function("pr-closed", "whoami")
    runtime.close()

    # When a function is invoked
    response, payload = invoke("pr-closed", {})

    # Then the invocation fails with the runtime's error, not a hang or a crash of moto
    assert "FunctionError" in response
    assert payload["errorType"] == "Runtime.Unavailable"


def test_a_handler_that_cannot_be_imported_reports_the_runtime_error(runtime: ProcessRuntime) -> None:
    # Given a function whose handler module does not exist
    create_function("pr-no-module", "whoami")
    boto3.client("lambda").update_function_configuration(
        FunctionName="pr-no-module", Handler="nowhere.handler"
    )

    # When it is invoked
    response, payload = invoke("pr-no-module", {})

    # Then it fails with the Python runtime's import error, in its worker
    assert "FunctionError" in response
    assert payload["errorType"] == "Runtime.ImportModuleError"


def test_function_output_goes_to_its_log_file_and_only_warnings_to_the_console(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    # Given a runtime that keeps function output in log files, with a calm console
    console = io.StringIO()
    logs = FunctionLogs(tmp_path / "logs", verbose=False, console=console)
    the_runtime = ProcessRuntime(
        base_env=worker_base_environment(process_environment(moto_server.port)), logs=logs
    )
    patches.use_runtime(the_runtime)
    try:
        create_function("pr-chatty", "chatty")
        # When a function that logs at INFO and WARNING and emits a metric is invoked
        _, payload = invoke("pr-chatty", {})
    finally:
        patches.use_runtime(None)
        the_runtime.close()  # the worker's output closes, and its copy finishes
    for _ in range(100):
        if len(logs.path("pr-chatty").read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)

    # Then the log file holds every line, then the platform's REPORT line as Lambda writes it,
    # and the console only the warning, named by its function
    assert payload == "said"
    *lines, report = logs.path("pr-chatty").read_text().splitlines()
    assert [json.loads(line).get("level") for line in lines] == ["INFO", "WARNING", None]
    assert (
        report.startswith("REPORT RequestId: ") and "\tDuration: " in report and "Max Memory Used: " in report
    )
    shown = console.getvalue().splitlines()
    assert len(shown) == 1
    assert shown[0].startswith("pr-chatty: ") and "look at this" in shown[0]


def test_workers_report_each_invocations_aws_requests_and_cpu(
    runtime: ProcessRuntime, spec: ServalSpec
) -> None:
    # Given a function (Powertools service "lister") whose handler makes 3 AWS requests
    environment = spec.functions["api"].environment | {"POWERTOOLS_SERVICE_NAME": "lister"}
    create_function("pr-lister", "lister", environment=environment)

    # When it is invoked twice, metered as the bench meters the live stack
    with metered() as calls:
        invoke("pr-lister", {"n": 3})
        invoke("pr-lister", {"n": 3})

    # Then the runtime knows the requests and CPU of the worker, counted once, by service
    usage = calls.worker_usage()["lister"]
    assert usage.invocations == 2
    assert usage.calls == {"sqs:ListQueues": 6}
    assert usage.cpu_s > 0 and usage.duration_s > 0
    assert calls.of_function("lister") == {"sqs:ListQueues": 6}
    # And this process made only the two Invoke requests itself
    assert calls.of_function("-") == {"lambda:Invoke": 2}


def test_an_environment_idle_past_its_ttl_is_reclaimed_and_the_next_invocation_starts_fresh(
    moto_server: MotoServer,
) -> None:
    # Given a runtime that reclaims environments idle for 0.2 s
    the_runtime = ProcessRuntime(
        base_env=worker_base_environment(process_environment(moto_server.port)), idle_ttl_s=0.2
    )
    patches.use_runtime(the_runtime)
    try:
        create_function("pr-idle", "whoami")
        _, first = invoke("pr-idle", {})
        process = psutil.Process(first["pid"])
        # When it stays idle past the TTL
        process.wait(timeout=30)
        # Then its environment was stopped, and the pool holds none
        assert the_runtime.workers_started("pr-idle") == 0
        # And the next invocation runs in a fresh environment (a cold start)
        _, second = invoke("pr-idle", {})
        assert second["pid"] != first["pid"] and second["invocations_here"] == 1
    finally:
        patches.use_runtime(None)
        the_runtime.close()


@pytest.mark.parametrize("verbose", [False, True])
def test_functions_log_at_warning_locally_and_at_info_when_verbose(
    moto_server: MotoServer, tmp_path: Path, verbose: bool
) -> None:
    # Given the local stack's function environment, quiet or verbose
    console = io.StringIO()
    logs = FunctionLogs(tmp_path / "logs", verbose=verbose, console=console)
    the_runtime = ProcessRuntime(base_env=worker_environment(moto_server.port, verbose), logs=logs)
    patches.use_runtime(the_runtime)
    name = f"pr-levels-{'verbose' if verbose else 'quiet'}"
    try:
        create_function(name, "powertools_levels")
        # When a function logs an INFO and a WARNING record through Powertools
        _, payload = invoke(name, {})
    finally:
        patches.use_runtime(None)
        the_runtime.close()
    expected = ["INFO", "WARNING"] if verbose else ["WARNING"]
    for _ in range(100):
        if len(logs.path(name).read_text().splitlines()) >= len(expected) + 1:  # and the REPORT line
            break
        time.sleep(0.05)

    # Then quiet, only the warning is logged (and shown); verbose, both are, on the console too
    # (besides the platform's REPORT line after the invocation, which is not a log record)
    assert payload == "logged"
    records = [line for line in logs.path(name).read_text().splitlines() if not line.startswith("REPORT ")]
    assert [json.loads(line)["level"] for line in records] == expected
    shown = [line.removeprefix(f"{name}: ") for line in console.getvalue().splitlines()]
    assert [json.loads(line)["level"] for line in shown if not line.startswith("REPORT ")] == expected
