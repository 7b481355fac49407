"""Presigned uploads into a project's prefix: single PUT or multipart."""

from __future__ import annotations

import math
import posixpath
import re

from pydantic import BaseModel, Field, field_validator

from serval import keys
from serval.adapters import audit, projects, storage
from serval.domain import media
from serval.domain.actor import Actor
from serval.errors import UploadNotFound, ValidationFailed
from serval.logic import projects as projects_logic
from serval.settings import settings

MULTIPART_THRESHOLD = 100 * 1024 * 1024
PART_SIZE = 64 * 1024 * 1024
MAX_PARTS = 10_000
MAX_OBJECT = 5 * 1024**4
PART_URLS_PER_PAGE = 1000  # part URLs in one answer (~0.5 MB); POST …/uploads/parts gives the rest
_SAFE = re.compile(r"[A-Za-z0-9 _.\-()+=,@!]+")  # whole names only: fullmatch, never ^…$


class UploadRequest(BaseModel):
    filename: str = Field(
        min_length=1, max_length=255, description="File name, optionally with folders: a/b.png"
    )
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int | None = Field(default=None, ge=0, le=MAX_OBJECT, description="Bytes; required for multipart.")
    multipart: bool | None = Field(default=None, description="Force multipart; default: when size > 100 MiB.")

    @field_validator("filename")
    @classmethod
    def _safe(cls, value: str) -> str:
        parts = value.strip("/").split("/")
        if any(p in {"", ".", ".."} or not _SAFE.fullmatch(p) for p in parts):
            raise ValueError("use folder/file names of letters, digits, spaces and _ . - ( ) + = , @ !")
        return "/".join(parts)


class Upload(BaseModel):
    key: str
    bucket: str
    method: str
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = Field(default=None, description="Parts of a multipart upload.")
    part_urls: list[str] = Field(
        default_factory=list,
        description=f"URLs of parts 1.. (at most {PART_URLS_PER_PAGE}); `POST …/uploads/parts` gives the rest.",
    )
    expires_in: int
    kind: str = Field(description="media or manifest: what the upload will become once it lands")


class PartUrlsRequest(BaseModel):
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str = Field(min_length=1, max_length=1024)
    first_part: int = Field(ge=1, le=MAX_PARTS, description="The first part number to sign.")
    count: int = Field(default=PART_URLS_PER_PAGE, ge=1, le=PART_URLS_PER_PAGE)


class PartUrls(BaseModel):
    key: str
    upload_id: str
    first_part: int
    part_urls: list[str] = Field(description="URLs of parts first_part, first_part + 1, … (up to 10,000).")
    expires_in: int


class Part(BaseModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200)


class CompleteRequest(BaseModel):
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str = Field(min_length=1, max_length=1024)
    parts: list[Part] = Field(min_length=1, max_length=MAX_PARTS)


def create(project_id: str, request: UploadRequest, actor: Actor) -> Upload:
    project = projects_logic.active(project_id)
    kind = "manifest" if media.is_manifest(request.filename) else "media"
    detected = media.detect(request.filename, request.content_type)
    if kind == "media" and detected is None:
        raise ValidationFailed(
            "the file is neither a supported media type nor a manifest (.jsonl, .ndjson, .csv, .manifest)",
            details={"filename": request.filename},
        )
    if kind == "media" and detected not in project.media_types:
        raise ValidationFailed(
            f"the project takes {[m.value for m in project.media_types]}, not {detected}",
            details={"filename": request.filename},
        )
    cfg = settings()
    key = keys.project_data_prefix(project_id) + request.filename
    multipart = (
        request.multipart if request.multipart is not None else (request.size or 0) > MULTIPART_THRESHOLD
    )
    if not multipart:
        signed = storage.presigned_put(
            cfg.DATA_BUCKET, key, request.content_type, cfg.PRESIGN_SECONDS, actor.upload_metadata()
        )
        upload = Upload(key=key, bucket=cfg.DATA_BUCKET, expires_in=cfg.PRESIGN_SECONDS, kind=kind, **signed)
        return _audited(project_id, request, upload, actor)
    if request.size is None:
        raise ValidationFailed("a multipart upload needs the file size", details={"field": "size"})
    part_size = max(PART_SIZE, math.ceil(request.size / MAX_PARTS))
    parts = max(1, math.ceil(request.size / part_size))
    upload_id = storage.start_multipart(cfg.DATA_BUCKET, key, request.content_type, actor.upload_metadata())
    upload = Upload(
        key=key,
        bucket=cfg.DATA_BUCKET,
        method="PUT",
        upload_id=upload_id,
        part_size=part_size,
        part_count=parts,
        part_urls=_part_urls(key, upload_id, 1, min(parts, PART_URLS_PER_PAGE)),
        expires_in=cfg.PRESIGN_SECONDS,
        kind=kind,
    )
    return _audited(project_id, request, upload, actor)


def _part_urls(key: str, upload_id: str, first: int, count: int) -> list[str]:
    cfg = settings()
    return [
        storage.presigned_part(cfg.DATA_BUCKET, key, upload_id, n, cfg.PRESIGN_SECONDS)
        for n in range(first, first + count)
    ]


def _project_key(project_id: str, key: str) -> str:
    """``key`` if it names an object in the project's prefix as written (no ``.``, ``..`` or ``//``)."""
    prefix = keys.project_data_prefix(project_id)
    if posixpath.normpath(key) != key or not key.startswith(prefix) or key == prefix:
        raise UploadNotFound("no such upload in this project", details={"key": key})
    return key


def part_urls(project_id: str, request: PartUrlsRequest) -> PartUrls:
    """Presigned URLs for a range of a multipart upload's parts (the first page came with the upload)."""
    projects_logic.active(project_id)
    key = _project_key(project_id, request.key)
    count = min(request.count, MAX_PARTS - request.first_part + 1)
    return PartUrls(
        key=key,
        upload_id=request.upload_id,
        first_part=request.first_part,
        part_urls=_part_urls(key, request.upload_id, request.first_part, count),
        expires_in=settings().PRESIGN_SECONDS,
    )


def _audited(project_id: str, request: UploadRequest, upload: Upload, actor: Actor) -> Upload:
    """Record the upload URL before it is handed out: none exists without its record."""
    audit.record_alone(
        actor,
        "upload.create",
        "upload",
        upload.key,
        project_id,
        after={
            "key": upload.key,
            "kind": upload.kind,
            "content_type": request.content_type,
            "size": request.size,
            "upload_id": upload.upload_id,
            "expires_in": upload.expires_in,
        },
    )
    return upload


def complete(project_id: str, request: CompleteRequest, actor: Actor) -> dict[str, str]:
    projects.get(project_id)
    key = _project_key(project_id, request.key)
    parts = sorted((p.model_dump() for p in request.parts), key=lambda p: p["part_number"])
    etag = storage.complete_multipart(settings().DATA_BUCKET, key, request.upload_id, parts)
    audit.record_alone(
        actor,
        "upload.complete",
        "upload",
        key,
        project_id,
        after={"key": key, "upload_id": request.upload_id, "parts": len(parts), "etag": etag},
    )
    return {"key": key, "etag": etag}
