"""The labelling queue and the review queue: lease, heartbeat, release, skip, assign, submit, review."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded, project_access
from api.telemetry import count
from serval.domain.models import AnnotationCreate, Task
from serval.domain.permissions import Action
from serval.domain.queue import AssignRequest, Lease, ReviewDecision, ReviewOutcome, Submission
from serval.logic import queue as queue_logic
from serval.logic import review as review_logic

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]
TASK = "/projects/<project_id>/tasks/<task_id>"


@router.post(
    "/projects/<project_id>/next",
    tags=["queue"],
    summary="Lease the next task to label (`task` is null when the queue has nothing for you)",
    description="The task comes with presigned GET URLs of its media (`task.media`) and, when a "
    "review sent it back, the reviewer's comment and the rejected annotations (`task.rework`).",
    **guarded(Action.TASK_LEASE),
)
def next_task(project_id: Id) -> Lease:
    lease = queue_logic.next_task(project_id, actor(router), project_access(router))
    if lease.task is not None:
        count("TaskLeased")
    return lease


@router.post(
    TASK + "/heartbeat",
    tags=["queue"],
    summary="Extend your lease on a task (labelling or review)",
    description="Returns fresh media URLs (`task.media`). "
    "409 `lease_not_held` when you do not hold the task's lease.",
    **guarded(Action.TASK_LEASE),
)
def heartbeat(project_id: Id, task_id: Id) -> Lease:
    return queue_logic.heartbeat(project_id, task_id, actor(router), project_access(router))


@router.post(
    TASK + "/release",
    tags=["queue"],
    summary="Give a leased task back to its queue (labelling or review)",
    description="409 `lease_not_held` when you do not hold the task's lease.",
    **guarded(Action.TASK_LEASE),
)
def release(project_id: Id, task_id: Id) -> Task:
    task: Task = queue_logic.release(project_id, task_id, actor(router))
    return task


@router.post(
    TASK + "/skip",
    tags=["queue"],
    summary="Give a leased task back and never be offered it again",
    description="409 `lease_not_held` when you do not hold the task's lease.",
    **guarded(Action.TASK_LEASE),
)
def skip(project_id: Id, task_id: Id) -> Task:
    task: Task = queue_logic.release(project_id, task_id, actor(router), skip=True)
    count("TaskSkipped")
    return task


@router.post(
    TASK + "/assign",
    tags=["queue"],
    summary="Reserve a task for a member who may annotate",
    **guarded(Action.TASK_ASSIGN),
)
def assign(project_id: Id, task_id: Id, body: AssignRequest) -> Task:
    task: Task = queue_logic.assign(project_id, task_id, body.user_id, actor(router))
    return task


@router.post(
    TASK + "/submit",
    tags=["queue"],
    summary="Submit your annotation of the task you lease",
    description="409 `lease_not_held` when you do not hold the task's lease.",
    **guarded(Action.TASK_LEASE),
)
def submit(project_id: Id, task_id: Id, body: AnnotationCreate) -> Submission:
    submission = queue_logic.submit(project_id, task_id, body, actor(router))
    count("AnnotationSubmitted")
    return submission


@router.post(
    "/projects/<project_id>/review/next",
    tags=["review"],
    summary="Lease the next task to review (`task` is null when there is none for you)",
    **guarded(Action.REVIEW_LEASE),
)
def next_review(project_id: Id) -> Lease:
    return review_logic.next_review(project_id, actor(router), project_access(router))


@router.post(
    TASK + "/review",
    tags=["review"],
    summary="Approve (optionally with an edit) or reject the task you review",
    description="409 `lease_not_held` without a review lease; 409 `task_token_invalid` when the workflow step is gone.",
    **guarded(Action.REVIEW_DECIDE),
)
def review(project_id: Id, task_id: Id, body: ReviewDecision) -> ReviewOutcome:
    outcome = review_logic.decide(project_id, task_id, body, actor(router))
    count("ReviewApproved" if body.decision == "approve" else "ReviewRejected")
    return outcome
