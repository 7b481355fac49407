"""Bulk operations on a project's tasks: start one (async job) and poll its progress."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor as caller
from api.guard import guarded
from api.telemetry import count
from serval.domain.bulk import BulkCreate, BulkJobView
from serval.domain.permissions import Action
from serval.logic import bulk

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/projects/<project_id>/bulk",
    status_code=202,
    tags=["bulk"],
    summary=(
        "Start a bulk operation on tasks (tag, untag, set_priority, archive, delete, assign, unassign, "
        "requeue, accept_predictions)"
    ),
    description="422 when `user_id` (assign) is not a project member who may annotate.",
    **guarded(Action.BULK_UPDATE),
)
def create_bulk(
    project_id: Id,
    body: BulkCreate,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Repeat-safe key: the same key (per project) returns the same job.",
        ),
    ] = None,
) -> BulkJobView:
    job = bulk.start(project_id, body, caller(router), idempotency_key)
    count("BulkJobStarted")
    return bulk.view(project_id, job.job_id)


@router.get(
    "/projects/<project_id>/bulk/<bulk_id>",
    tags=["bulk"],
    summary="A bulk operation's status and progress (counts done and failed)",
    **guarded(Action.BULK_UPDATE),
)
def get_bulk(project_id: Id, bulk_id: Id) -> BulkJobView:
    return bulk.view(project_id, bulk_id)
