"""Dataset exports: start one (an async job), poll it, download it (see docs/exports.md)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor as caller
from api.guard import guarded
from api.telemetry import count
from serval.domain.exports import DatasetExportCreate
from serval.domain.jobs import JobKind, JobView
from serval.domain.permissions import Action
from serval.logic import dataset_export, jobs

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/projects/<project_id>/exports",
    status_code=202,
    tags=["exports"],
    summary="Start a dataset export (JSON, JSONL, CSV, COCO, YOLO, VOC, CoNLL 2003, Ground Truth manifest)",
    **guarded(Action.EXPORT_CREATE),
)
def create_export(project_id: Id, body: DatasetExportCreate) -> JobView:
    job = dataset_export.start(project_id, body, caller(router))
    count("DatasetExportStarted")
    return JobView(**job.model_dump())


@router.get(
    "/projects/<project_id>/exports/<export_id>",
    tags=["exports"],
    summary="A dataset export's status and counts, and its download link once it succeeded",
    **guarded(Action.EXPORT_READ),
)
def get_export(project_id: Id, export_id: Id) -> JobView:
    return jobs.view(project_id, export_id, JobKind.DATASET_EXPORT)
