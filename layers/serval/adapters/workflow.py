"""Step Functions: start a task's execution, and complete the step it waits on.

Each task runs one Standard execution (name = task id, so a repeated start is a no-op).
Its Label and Review steps wait with ``.waitForTaskToken``; the token is stored on the
task item, and submit and review hand the step its result through :func:`send_success`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from serval.adapters import clients
from serval.domain.handoffs import Delivery, Execution
from serval.errors import TaskTokenInvalid

# Errors that mean "this step is no longer waiting": already completed, timed out, or never was.
_GONE = {"InvalidToken", "TaskTimedOut", "TaskDoesNotExist"}


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def send_success(token: str, output: dict[str, Any]) -> None:
    """Complete the waiting step that issued ``token``. 409 ``task_token_invalid`` if it no longer waits."""
    from botocore.exceptions import ClientError

    try:
        clients.stepfunctions().send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as exc:
        if _code(exc) in _GONE:
            raise TaskTokenInvalid(
                "this step of the task's workflow is no longer waiting (already completed or timed out)",
                details={"reason": _code(exc)},
            ) from exc
        raise


def deliver(token: str, output: dict[str, Any]) -> Delivery:
    """Hand the waiting step that issued ``token`` its result, as :func:`send_success`, and say
    what came of it instead of raising: a send that failed after the SDK's retries leaves the
    handoff in the task's outbox, for the reconciler."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        send_success(token, output)
    except TaskTokenInvalid:
        return Delivery.STEP_GONE
    except (ClientError, BotoCoreError):
        return Delivery.NOT_DELIVERED
    return Delivery.DELIVERED


_ENDED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the machine's execution called ``name``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def execution_state(state_machine_arn: str, name: str) -> Execution:
    """Whether the machine's execution ``name`` runs, has ended, or does not exist."""
    from botocore.exceptions import ClientError

    try:
        described = clients.stepfunctions().describe_execution(
            executionArn=execution_arn(state_machine_arn, name)
        )
    except ClientError as exc:
        if _code(exc) == "ExecutionDoesNotExist":
            return Execution.MISSING
        raise
    return Execution.ENDED if described["status"] in _ENDED else Execution.RUNNING


@dataclass(frozen=True)
class Running:
    """A running execution of the machine, as listed."""

    name: str
    started: float  # epoch seconds


def running(state_machine_arn: str) -> list[Running]:
    """Every running execution of the machine (ListExecutions, by pages of 1,000)."""
    kwargs: dict[str, Any] = {
        "stateMachineArn": state_machine_arn,
        "statusFilter": "RUNNING",
        "maxResults": 1000,
    }
    found: list[Running] = []
    while True:
        page = clients.stepfunctions().list_executions(**kwargs)
        found += [Running(e["name"], e["startDate"].timestamp()) for e in page["executions"]]
        if not page.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]


def execution_input(state_machine_arn: str, name: str) -> dict[str, Any] | None:
    """The input an execution was started with; None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        described = clients.stepfunctions().describe_execution(
            executionArn=execution_arn(state_machine_arn, name)
        )
    except ClientError as exc:
        if _code(exc) == "ExecutionDoesNotExist":
            return None
        raise
    value = json.loads(described.get("input") or "{}")
    return value if isinstance(value, dict) else {}


def stop(state_machine_arn: str, name: str, error: str, cause: str) -> bool:
    """Stop the machine's execution ``name``; False when it no longer runs."""
    from botocore.exceptions import ClientError

    try:
        clients.stepfunctions().stop_execution(
            executionArn=execution_arn(state_machine_arn, name), error=error, cause=cause
        )
    except ClientError as exc:
        if _code(exc) == "ExecutionDoesNotExist":
            return False
        raise
    return True


def send_failure(token: str, error: str, cause: str) -> bool:
    """Fail the waiting step that issued ``token`` with ``error``; False when it no longer waits."""
    from botocore.exceptions import ClientError

    try:
        clients.stepfunctions().send_task_failure(taskToken=token, error=error, cause=cause)
    except ClientError as exc:
        if _code(exc) in _GONE:
            return False
        raise
    return True


def start(state_machine_arn: str, task_id: str, payload: dict[str, Any]) -> bool:
    """Start the task's execution; False when it already exists (a redelivered start)."""
    from botocore.exceptions import ClientError

    try:
        clients.stepfunctions().start_execution(
            stateMachineArn=state_machine_arn, name=task_id, input=json.dumps(payload)
        )
    except ClientError as exc:
        if _code(exc) == "ExecutionAlreadyExists":
            return False
        raise
    return True
