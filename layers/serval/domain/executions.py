"""The executions queue's messages, and the names of re-created executions (no AWS here: the
starter parses these messages, and the local stack writes resume requests).

A message is a ``task.created`` event routed from the bus (start that task's execution), a
refill request (fill the project's free window slots from its backlog), or a resume request
(re-create the execution of a task whose waiting step outlived it, see
:func:`serval.logic.workflow.resume`). A re-created execution is named after the one it
replaces, ``<task id>-r<n>``, so each ended execution has exactly one successor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from serval.errors import ValidationFailed

REFILL = "refill"
RESUME = "resume"
RESUMED_SUFFIX = "-r"  # a re-created execution's name: <task id>-r<n>, n = 1, 2, ...


@dataclass(frozen=True)
class StartRequest:
    project_id: str
    task_id: str | None  # None: fill the project's free slots from its backlog


@dataclass(frozen=True)
class ResumeRequest:
    """Re-create the execution of a task left waiting in Label or Review by ``execution`` (the
    execution that issued its stored token), which the sender knows to have ended."""

    project_id: str
    task_id: str
    execution: str


def parse_start_message(body: str) -> StartRequest | ResumeRequest:
    """A message of the executions queue: a ``task.created`` event from the bus, a refill, or a
    resume request."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed("the message is not JSON") from exc
    if not isinstance(message, dict):
        raise ValidationFailed("the message is not an object")
    if message.get(REFILL):
        return StartRequest(project_id=str(message[REFILL]), task_id=None)
    resume_of = message.get(RESUME)
    if isinstance(resume_of, dict):
        fields = [resume_of.get(k) for k in ("project_id", "task_id", "execution")]
        if all(isinstance(f, str) and f for f in fields):
            return ResumeRequest(*(str(f) for f in fields))
        raise ValidationFailed("a resume request names project_id, task_id and execution")
    detail = message.get("detail")
    if message.get("detail-type") == "task.created" and isinstance(detail, dict):
        data = detail.get("data") or {}
        if detail.get("project_id") and data.get("task_id"):
            return StartRequest(project_id=str(detail["project_id"]), task_id=str(data["task_id"]))
    raise ValidationFailed("the message is neither a task.created event, a refill nor a resume request")


def refill_message(project_id: str) -> str:
    """The executions-queue message that asks to fill the project's free window slots."""
    return json.dumps({REFILL: project_id})


def resume_message(request: ResumeRequest) -> str:
    """The executions-queue message of a resume request (see :func:`parse_start_message`)."""
    return json.dumps(
        {
            RESUME: {
                "project_id": request.project_id,
                "task_id": request.task_id,
                "execution": request.execution,
            }
        }
    )


def task_of(execution: str) -> str:
    """The task an execution runs for: its name, less a re-created execution's ``-r<n>``."""
    base, _, n = execution.rpartition(RESUMED_SUFFIX)
    return base if base and n.isdigit() else execution


def current_execution(task_id: str, execution_name: str | None) -> str:
    """The name of the execution that issued a task's stored token (a task whose wait predates
    the recorded name was started under its id)."""
    return execution_name or task_id


def successor(task_id: str, execution: str) -> str:
    """The name of the execution that re-creates ``execution``: one name per ended execution, so
    a repeated or concurrent resume of the same one starts nothing twice."""
    prefix = task_id + RESUMED_SUFFIX
    rounds = execution.removeprefix(prefix)
    n = int(rounds) if execution.startswith(prefix) and rounds.isdigit() else 0
    return f"{prefix}{n + 1}"
