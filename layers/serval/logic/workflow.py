"""The task workflow: starting executions within each project's window, and the steps they run.

One Standard execution per task runs ``infra/statemachine/task.asl.json``:
AutoLabelPassThrough → Route → Label (waits) → LabelChoice: annotators agreed (overlap >= 2,
agreement at or above the project's threshold): AcceptConsensus → ExportRecord; otherwise
Review (waits) → approved: ExportRecord → EmitCompleted; rejected: back to Label with a rework
count, up to the project's maximum, then Escalate; requeue (a manager's bulk requeue): back to
Label without counting a rework round. The Lambda steps land in :func:`run_step`; humans complete the waits
through the API (submit, review), which calls ``SendTaskSuccess`` with the stored token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from serval.adapters import projects, queues, tasks, window
from serval.adapters import queue as queue_store
from serval.adapters import workflow as machine
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Project, utcnow
from serval.errors import NotFound, Throttled, ValidationFailed
from serval.settings import settings

REFILL = "refill"
# The error a deleted task's execution ends with (state machine: Catch -> Deleted). Steps that
# find their task gone raise it too (functions/workflow/handler.py).
TASK_DELETED = "TaskDeleted"


# ---- starting executions -------------------------------------------------------------------


@dataclass(frozen=True)
class StartRequest:
    project_id: str
    task_id: str | None  # None: fill the project's free slots from its backlog


def parse_start_message(body: str) -> StartRequest:
    """A message of the executions queue: a ``task.created`` event from the bus, or a refill."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ValidationFailed("the message is not JSON") from exc
    if not isinstance(message, dict):
        raise ValidationFailed("the message is not an object")
    if message.get(REFILL):
        return StartRequest(project_id=str(message[REFILL]), task_id=None)
    detail = message.get("detail")
    if message.get("detail-type") == "task.created" and isinstance(detail, dict):
        data = detail.get("data") or {}
        if detail.get("project_id") and data.get("task_id"):
            return StartRequest(project_id=str(detail["project_id"]), task_id=str(data["task_id"]))
    raise ValidationFailed("the message is neither a task.created event nor a refill request")


def execution_input(project: Project, task_id: str) -> dict[str, Any]:
    """The execution's input: ids only (Step Functions payloads are small), and the rework bound."""
    return {
        "project_id": project.project_id,
        "task_id": task_id,
        "max_rework": project.settings.max_rework_rounds,
        "rework": {"n": 0},
    }


@dataclass
class StartBatch:
    """What one starter invocation learnt so far: the projects it read, and the projects whose
    window it found full (their further ``task.created`` messages wait in the backlog without
    another slot attempt; the refill after a slot frees up starts them)."""

    projects: dict[str, Project | None] = field(default_factory=dict)
    full: set[str] = field(default_factory=set)


def start(request: StartRequest, batch: StartBatch | None = None) -> int:
    """Start the task's execution, or fill the project's free slots; returns executions started.

    ``batch`` is shared by the messages of one invocation (mostly one project's): one project
    read per project and batch, and no slot attempts once its window was found full.
    """
    batch = StartBatch() if batch is None else batch
    if request.task_id and request.project_id in batch.full:
        return 0
    size = settings().ACTIVE_WINDOW
    candidates = [request.task_id] if request.task_id else _refill_candidates(request.project_id, size)
    if not candidates:
        return 0  # a refill with no free slot or an empty backlog reads nothing more
    if request.project_id not in batch.projects:
        try:
            batch.projects[request.project_id] = projects.get(request.project_id)
        except NotFound:
            batch.projects[request.project_id] = None
    project = batch.projects[request.project_id]
    if project is None:
        return 0  # the project is gone: nothing to start
    started = 0
    for task_id in candidates:
        claim = window.take_slot(project.project_id, task_id, size)
        if claim is window.Claim.FULL:
            batch.full.add(project.project_id)
            break  # a full window leaves the tasks in the backlog; a refill starts them later
        if claim is window.Claim.GONE:
            continue
        machine.start(settings().STATE_MACHINE_ARN, task_id, execution_input(project, task_id))
        started += 1
    return started


def _refill_candidates(project_id: str, size: int) -> list[str]:
    """Backlog tasks for the window's free slots: one read of the window, then (only when a
    slot is free) one Query of the backlog."""
    free = size - window.open_count(project_id)
    return window.backlog(project_id, free) if free > 0 else []


def request_refill(project_id: str) -> None:
    queues.send(settings().EXECUTIONS_QUEUE_URL, json.dumps({REFILL: project_id}), {"kind": REFILL})


def end_deleted(project_id: str, deleted: tasks.Deleted, refill: bool = True) -> None:
    """End what a deleted task left behind: its waiting Label or Review step fails with
    :data:`TASK_DELETED` (the state machine catches it and ends in ``Deleted``), and the window
    slot its delete gave back is refilled from the backlog (``refill=False``: the caller asks
    once for many deletes)."""
    for token in deleted.waiting_tokens:
        machine.send_failure(token, TASK_DELETED, "the task was deleted")
    if deleted.open_execution and refill:
        request_refill(project_id)


# ---- the state machine's Lambda steps ---------------------------------------------------------


def run_step(event: dict[str, Any]) -> dict[str, Any]:
    """One Task state of the task state machine (the event is the state's ``Payload``)."""
    from serval.logic import queue

    action = event.get("action")
    project_id, task_id = str(event["project_id"]), str(event["task_id"])
    if action == "route":
        return {"next": "label"}  # routing by prediction confidence arrives with auto-labeling
    if action == "label":
        queue.enter_label(project_id, task_id, str(event["token"]), int(event.get("rework") or 0))
        return {}
    if action == "review":
        queue.enter_review(project_id, task_id, str(event["token"]))
        return {}
    if action == "accept_consensus":
        queue.accept_consensus(project_id, task_id)
        return {}
    if action == "export_record":
        queue.mark_exported(project_id, task_id)
        return {}
    if action in ("emit_completed", "escalate", "record_failure"):
        if action == "escalate":
            _mark(project_id, task_id, "task.escalate", {"escalated_at": utcnow()})
        if action == "record_failure":
            _mark(
                project_id,
                task_id,
                "task.workflow_failed",
                {"workflow_error": json.dumps(event.get("error"))[:2000]},
            )
        if window.release_slot(project_id, task_id):
            request_refill(project_id)
        return {}
    raise ValidationFailed(f"unknown workflow step {action!r}", details={"action": action})


def _mark(project_id: str, task_id: str, action: str, attributes: dict[str, Any]) -> None:
    """Record a workflow outcome on the task (its status unchanged), audited as the workflow."""
    item = tasks.get_item(project_id, task_id)
    status = TaskStatus(item.status)
    change = queue_store.Transition(
        project_id,
        task_id,
        status,
        status,
        str(item.GSI1SK),
        Actor.system("workflow"),
        action,
        set=attributes,
        audit_after=attributes,
    )
    try:
        queue_store.apply(change)
    except queue_store.Lost as exc:
        raise Throttled(f"task {task_id} changed while {action} was recorded; retried") from exc
