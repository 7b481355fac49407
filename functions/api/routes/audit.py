"""Audit queries (a project's records; the global records) and async audit exports."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AwareDatetime

from api.guard import actor as caller
from api.guard import guarded
from api.routes.common import Cursor, Limit, Page
from api.telemetry import count
from serval.domain.audit import AuditRecord
from serval.domain.jobs import AuditExportCreate, JobKind, JobView
from serval.domain.permissions import Action
from serval.logic import audit_export, audit_queries, jobs
from serval.logic.audit_queries import AuditQuery

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]
ActorFilter = Annotated[
    str | None, Query(min_length=1, max_length=128, description="Only this user's records.")
]
TargetType = Annotated[
    str | None, Query(min_length=1, max_length=64, description="With target_id: one object's records.")
]
TargetId = Annotated[str | None, Query(min_length=1, max_length=256, description="With target_type.")]
ActionFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this action, e.g. task.update.")
]
ProjectFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="One project's records.")
]
Since = Annotated[
    AwareDatetime | None, Query(description="ISO-8601 time with offset: records at or after it.")
]
Until = Annotated[AwareDatetime | None, Query(description="ISO-8601 time with offset: records before it.")]
Order = Annotated[Literal["asc", "desc"], Query(description="By time; newest first by default.")]


@router.get(
    "/projects/<project_id>/audit",
    tags=["audit"],
    summary="Query a project's audit records",
    **guarded(Action.AUDIT_READ),
)
def list_project_audit(
    project_id: Id,
    actor: ActorFilter = None,
    target_type: TargetType = None,
    target_id: TargetId = None,
    action: ActionFilter = None,
    since: Since = None,
    until: Until = None,
    order: Order = "desc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditRecord]:
    query = AuditQuery(actor, target_type, target_id, action, since, until, descending=order == "desc")
    items, next_cursor = audit_queries.project_page(project_id, query, limit, cursor)
    return Page[AuditRecord](items=items, next_cursor=next_cursor)


@router.get(
    "/audit",
    tags=["audit"],
    summary="Query the global audit records (user management), or one project's",
    **guarded(Action.AUDIT_READ_ALL),
)
def list_global_audit(
    project_id: ProjectFilter = None,
    actor: ActorFilter = None,
    target_type: TargetType = None,
    target_id: TargetId = None,
    action: ActionFilter = None,
    since: Since = None,
    until: Until = None,
    order: Order = "desc",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditRecord]:
    query = AuditQuery(actor, target_type, target_id, action, since, until, descending=order == "desc")
    items, next_cursor = audit_queries.global_page(project_id, query, limit, cursor)
    return Page[AuditRecord](items=items, next_cursor=next_cursor)


@router.post(
    "/projects/<project_id>/audit/exports",
    status_code=202,
    tags=["audit"],
    summary="Start an export of a project's audit records (JSON Lines or CSV)",
    **guarded(Action.AUDIT_EXPORT),
)
def create_audit_export(project_id: Id, body: AuditExportCreate) -> JobView:
    job = audit_export.start(project_id, body, caller(router))
    count("AuditExportStarted")
    return JobView(**job.model_dump())


@router.get(
    "/projects/<project_id>/audit/exports/<job_id>",
    tags=["audit"],
    summary="An audit export's status, and its download link once it succeeded",
    **guarded(Action.AUDIT_EXPORT),
)
def get_audit_export(project_id: Id, job_id: Id) -> JobView:
    return jobs.view(project_id, job_id, JobKind.AUDIT_EXPORT)
