"""The task workflow: starting executions within each project's window, and the steps they run.

One Standard execution per task runs ``infra/statemachine/task.asl.json``: Entry (where a
re-created execution resumes, below) → AutoLabelPassThrough → Route → Label (waits) →
LabelChoice: annotators agreed (overlap >= 2, agreement at or above the project's threshold):
AcceptConsensus → ExportRecord; otherwise Review (waits) → approved: ExportRecord →
EmitCompleted; rejected: back to Label with a rework count, up to the project's maximum, then
Escalate; requeue (a manager's bulk requeue): back to Label without counting a rework round.
The Lambda steps land in :func:`run_step`; humans complete the waits through the API (submit,
review), which calls ``SendTaskSuccess`` with the stored token.

An execution that ended while its task waited in Label or Review (the local stack keeps no
executions over a restart) leaves a token nothing answers. :func:`resume` re-creates it: a new
execution of the same machine whose ``resume_at`` input sends it straight back into that wait
(the machine's ``Entry`` choice), where it hands the wait its own token. Resume requests go
through the executions queue like starts (:mod:`serval.domain.executions`), so the starter
throttles them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from serval.adapters import projects, queues, tasks, window
from serval.adapters import queue as queue_store
from serval.adapters import workflow as machine
from serval.domain.actor import Actor
from serval.domain.executions import (
    REFILL,
    RESUME,
    ResumeRequest,
    StartRequest,
    current_execution,
    refill_message,
    resume_message,
    successor,
)
from serval.domain.lifecycle import TaskStatus, WaitStep
from serval.domain.models import Project, utcnow
from serval.errors import NotFound, Throttled, ValidationFailed
from serval.settings import settings

# The error a deleted task's execution ends with (state machine: Catch -> Deleted). Steps that
# find their task gone raise it too (functions/workflow/handler.py).
TASK_DELETED = "TaskDeleted"


# ---- starting executions -------------------------------------------------------------------


def execution_input(project: Project, task_id: str) -> dict[str, Any]:
    """The execution's input: ids only (Step Functions payloads are small), the rework bound, and
    no step to resume at (the machine's Entry choice then starts at the beginning)."""
    return {
        "project_id": project.project_id,
        "task_id": task_id,
        "max_rework": project.settings.max_rework_rounds,
        "rework": {"n": 0},
        "resume_at": None,
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


def resume_input(project: Project, task_id: str, step: WaitStep, rework: int) -> dict[str, Any]:
    """A re-created execution's input: a new one's, with the step to resume at and the rework
    rounds the task has been through."""
    return execution_input(project, task_id) | {"resume_at": step.value, "rework": {"n": rework}}


def resume(request: ResumeRequest) -> WaitStep | None:
    """Re-create the task's execution, straight into the step it waits in; the step it resumed,
    or None when there is nothing to resume.

    Nothing is started for a task that is gone, waits in no step, whose execution ended
    (its window slot was given back), or whose wait was taken over by an execution other than
    ``request.execution`` already (a repeated request). The new execution holds the slot the old
    one held: the window's count does not change, and the slot is given back once, when it ends.
    """
    from serval.logic import queue

    try:
        item = tasks.get_item(request.project_id, request.task_id)
        project = projects.get(request.project_id)
    except NotFound:
        return None
    step = queue.waits_in(item)
    current = current_execution(request.task_id, item.execution_name)
    if step is None or item.execution_ended_at or current != request.execution:
        return None
    payload = resume_input(project, request.task_id, step, int(item.rework or 0))
    started = machine.start(settings().STATE_MACHINE_ARN, successor(request.task_id, current), payload)
    return step if started else None  # not started: a repeated request found its successor


def _refill_candidates(project_id: str, size: int) -> list[str]:
    """Backlog tasks for the window's free slots: one read of the window, then (only when a
    slot is free) one Query of the backlog."""
    free = size - window.open_count(project_id)
    return window.backlog(project_id, free) if free > 0 else []


def request_refill(project_id: str) -> None:
    queues.send(settings().EXECUTIONS_QUEUE_URL, refill_message(project_id), {"kind": REFILL})


def request_resume(request: ResumeRequest) -> None:
    """Ask the starter to re-create an execution that ended while its task waited (see :func:`resume`)."""
    queues.send(settings().EXECUTIONS_QUEUE_URL, resume_message(request), {"kind": RESUME})


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
    execution = str(event["execution"]) if event.get("execution") else None
    if action == "label":
        rework = int(event.get("rework") or 0)
        queue.enter_label(project_id, task_id, str(event["token"]), rework, execution)
        return {}
    if action == "review":
        queue.enter_review(project_id, task_id, str(event["token"]), execution)
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
        remove=queue_store.HANDOFF,  # the execution ran a step past the waits: it had the result
        audit_after=attributes,
    )
    try:
        queue_store.apply(change)
    except queue_store.Lost as exc:
        raise Throttled(f"task {task_id} changed while {action} was recorded; retried") from exc
