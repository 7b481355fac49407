from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded, project_access
from api.routes.common import Cursor, Limit, Page
from api.telemetry import count
from serval.domain.audit import TaskEvent
from serval.domain.lifecycle import TaskStatus
from serval.domain.media import MediaType
from serval.domain.models import Task, TaskDetail, TaskPatch
from serval.domain.permissions import Action
from serval.logic import audit_queries, task_detail, tasks
from serval.logic.tasks import BulkCreateResult, TaskFilter, TaskInput

router = APIGatewayRouter()
ProjectId = Annotated[str, Path(min_length=1, max_length=64)]
TaskId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/projects/<project_id>/tasks",
    status_code=201,
    tags=["tasks"],
    summary="Create up to 1,000 tasks at once (idempotent with Idempotency-Key)",
    description="For more tasks, upload a JSONL or CSV manifest through `POST /projects/{project_id}/uploads`.",
    **guarded(Action.TASK_CREATE),
)
def create_tasks(
    project_id: ProjectId,
    body: Annotated[list[TaskInput], Body(min_length=1, max_length=1000)],
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=200, description="Repeat-safe key for retries."),
    ] = None,
) -> BulkCreateResult:
    result = tasks.bulk_create(project_id, body, actor(router), idempotency_key)
    count("TasksCreated", result.created)
    return result


@router.get("/projects/<project_id>/tasks", tags=["tasks"], summary="List tasks", **guarded(Action.TASK_READ))
def list_tasks(
    project_id: ProjectId,
    status: Annotated[TaskStatus | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    has_prediction: Annotated[bool | None, Query()] = None,
    media_type: Annotated[MediaType | None, Query(description="The task's data type.")] = None,
    assignee: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only tasks reserved for this member.")
    ] = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="By creation time.")] = "asc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Task]:
    f = TaskFilter(
        status=status,
        tag=tag,
        has_prediction=has_prediction,
        media_type=media_type,
        assignee=assignee,
        descending=order == "desc",
    )
    items, next_cursor = tasks.list_page(project_id, f, limit, cursor)
    return Page[Task](items=items, next_cursor=next_cursor)


@router.get(
    "/projects/<project_id>/tasks/<task_id>",
    tags=["tasks"],
    summary="Get a task, with presigned URLs of its media and its rework (if a review sent it back)",
    **guarded(Action.TASK_READ),
)
def get_task(project_id: ProjectId, task_id: TaskId) -> TaskDetail:
    return task_detail.get(project_id, task_id, actor(router), project_access(router))


@router.get(
    "/projects/<project_id>/tasks/<task_id>/history",
    tags=["tasks"],
    summary="A task's history: its audit records, newest first by default",
    description="Who did what to the task and when: leases, submits, reviews, edits, assignments. "
    "A bulk job writes one record for all the tasks it changed, in the project's audit "
    "(`GET /projects/{project_id}/audit`), not in each task's history.",
    **guarded(Action.TASK_HISTORY_READ),
)
def task_history(
    project_id: ProjectId,
    task_id: TaskId,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="By time.")] = "desc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskEvent]:
    items, next_cursor = audit_queries.task_page(project_id, task_id, order == "desc", limit, cursor)
    return Page[TaskEvent](items=items, next_cursor=next_cursor)


@router.patch(
    "/projects/<project_id>/tasks/<task_id>",
    tags=["tasks"],
    summary="Change a task's tags, priority or metadata",
    **guarded(Action.TASK_UPDATE),
)
def patch_task(project_id: ProjectId, task_id: TaskId, body: TaskPatch) -> Task:
    return tasks.patch(project_id, task_id, body, actor(router))


@router.delete(
    "/projects/<project_id>/tasks/<task_id>",
    status_code=204,
    tags=["tasks"],
    summary="Delete a task and its annotations",
    **guarded(Action.TASK_DELETE),
)
def delete_task(project_id: ProjectId, task_id: TaskId) -> None:
    tasks.delete(project_id, task_id, actor(router))
