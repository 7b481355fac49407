from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.models import Import
from serval.domain.permissions import Action
from serval.logic import imports, uploads
from serval.logic.uploads import CompleteRequest, PartUrls, PartUrlsRequest, Upload, UploadRequest

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=64)]


class CompletedUpload(BaseModel):
    key: str
    etag: str


class ImportDetail(Import):
    error_report_url: str | None = None


@router.post(
    "/projects/<project_id>/uploads",
    status_code=201,
    tags=["uploads"],
    summary="Get a presigned URL (or multipart part URLs) to upload media or a manifest",
    description="Objects land under `projects/{project_id}/` and become tasks through the ingest pipeline.",
    **guarded(Action.UPLOAD_CREATE),
)
def create_upload(project_id: Id, body: UploadRequest) -> Upload:
    return uploads.create(project_id, body, actor(router))


@router.post(
    "/projects/<project_id>/uploads/parts",
    tags=["uploads"],
    summary="Get presigned URLs for more parts of a multipart upload",
    description=(
        f"An upload's answer holds the URLs of its first {uploads.PART_URLS_PER_PAGE} parts; "
        "ask for the rest here, from `first_part` on, up to "
        f"{uploads.PART_URLS_PER_PAGE} at a time."
    ),
    **guarded(Action.UPLOAD_CREATE),
)
def upload_part_urls(project_id: Id, body: PartUrlsRequest) -> PartUrls:
    return uploads.part_urls(project_id, body)


@router.post(
    "/projects/<project_id>/uploads/complete",
    tags=["uploads"],
    summary="Complete a multipart upload",
    **guarded(Action.UPLOAD_CREATE),
)
def complete_upload(project_id: Id, body: CompleteRequest) -> CompletedUpload:
    return CompletedUpload(**uploads.complete(project_id, body, actor(router)))


@router.get(
    "/projects/<project_id>/imports",
    tags=["imports"],
    summary="List imports, newest first",
    **guarded(Action.IMPORT_READ),
)
def list_imports(project_id: Id, limit: Limit = 50, cursor: Cursor = None) -> Page[Import]:
    items, next_cursor = imports.list_page(project_id, limit, cursor)
    return Page[Import](items=items, next_cursor=next_cursor)


@router.get(
    "/projects/<project_id>/imports/<import_id>",
    tags=["imports"],
    summary="Get an import with a link to its error report",
    **guarded(Action.IMPORT_READ),
)
def get_import(project_id: Id, import_id: Id) -> ImportDetail:
    record, url = imports.get_with_report(project_id, import_id)
    return ImportDetail(**record.model_dump(), error_report_url=url)
