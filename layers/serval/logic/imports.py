"""Import use cases (reads; imports are written by the ingest pipeline and bulk create)."""

from __future__ import annotations

from serval.adapters import imports, projects, storage
from serval.domain.models import Import
from serval.settings import settings


def list_page(project_id: str, limit: int, cursor: str | None) -> tuple[list[Import], str | None]:
    projects.get(project_id)
    return imports.list_page(project_id, limit, cursor)


def get_with_report(project_id: str, import_id: str) -> tuple[Import, str | None]:
    """An import and, when it has one, a presigned link to its error report."""
    record = imports.get(project_id, import_id)
    url = None
    if record.error_report_key:
        cfg = settings()
        url = storage.presigned_get(cfg.DATA_BUCKET, record.error_report_key, cfg.PRESIGN_SECONDS)
    return record, url
