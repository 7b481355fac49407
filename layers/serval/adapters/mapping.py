"""Explicit mapping between pynamodb items and domain models."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Annotation, Import, Project, Rejection, Task


def project_to_attrs(p: Project) -> dict[str, Any]:
    return {
        "PK": keys.project_pk(p.project_id),
        "SK": keys.PROJECT_SK,
        "GSI1PK": keys.PROJECTS_GSI1PK,
        "GSI1SK": keys.time_sort_key(p.created_at, p.project_id),
        "project_id": p.project_id,
        "name": p.name,
        "description": p.description,
        "media_types": [m.value for m in p.media_types],
        "label_config": p.label_config.model_dump(mode="json"),
        "settings": p.settings.model_dump(mode="json"),
        "status": p.status.value,
        "created_by": p.created_by,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def project_from_item(item: Any) -> Project:
    return Project.model_validate(
        {
            "project_id": item.project_id,
            "name": item.name,
            "description": item.description or "",
            "media_types": item.media_types,
            "label_config": item.label_config,
            "settings": item.settings,
            "status": item.status,
            "created_by": item.created_by,
            "created_at": item.created_at,
            "updated_at": item.updated_at,
        }
    )


def task_index_keys(project_id: str, task_id: str, status: str, created_at: str) -> dict[str, str]:
    return {
        "GSI1PK": keys.status_gsi1pk(project_id, status),
        "GSI1SK": keys.time_sort_key(created_at, task_id),
        "GSI2PK": keys.tasks_gsi2pk(project_id),
        "GSI2SK": keys.time_sort_key(created_at, task_id),
    }


def task_to_attrs(t: Task) -> dict[str, Any]:
    return {
        "PK": keys.project_pk(t.project_id),
        "SK": keys.task_sk(t.task_id),
        **task_index_keys(t.project_id, t.task_id, t.status.value, t.created_at),
        "project_id": t.project_id,
        "task_id": t.task_id,
        "data": {k: v.model_dump(mode="json", exclude_none=True) for k, v in t.data.items()},
        "media_type": t.media_type.value,
        "metadata": t.metadata or None,
        "tags": t.tags or None,
        "priority": t.priority,
        "status": t.status.value,
        "predictions": [p.model_dump(mode="json") for p in t.predictions] or None,
        "has_prediction": bool(t.predictions),
        "external_id": t.external_id,
        "import_id": t.import_id,
        "source": t.source.model_dump(mode="json", exclude_none=True) if t.source else None,
        "annotation_count": t.annotation_count,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def presented_status(item: Any) -> TaskStatus:
    """The status a task shows: a gold task keeps its status while leased (it stays out of the
    queue), yet shows ``leased`` like any leased task, so annotators cannot tell it is gold."""
    if getattr(item, "gold", None) is not None and getattr(item, "lease_owner", None):
        return TaskStatus.LEASED
    return TaskStatus(item.status)


def task_from_item(item: Any) -> Task:
    return Task.model_validate(
        {
            "task_id": item.task_id,
            "project_id": item.project_id,
            "data": item.data,
            "media_type": item.media_type,
            "metadata": item.metadata or {},
            "tags": item.tags or [],
            "priority": int(item.priority or 0),
            "status": presented_status(item),
            "predictions": item.predictions or [],
            "external_id": item.external_id,
            "import_id": item.import_id,
            "source": item.source,
            "annotation_count": int(item.annotation_count or 0),
            "accepted_annotation_id": item.accepted_annotation_id,
            "created_at": item.created_at,
            "updated_at": item.updated_at,
        }
    )


def rejection_from_item(item: Any) -> Rejection | None:
    """The task's last review rejection (``last_rejection``), or None."""
    raw = item.last_rejection
    return None if not raw else Rejection.model_validate(raw)


def annotation_to_attrs(a: Annotation) -> dict[str, Any]:
    return {
        "PK": keys.project_pk(a.project_id),
        "SK": keys.annotation_sk(a.task_id, a.annotation_id),
        "project_id": a.project_id,
        "task_id": a.task_id,
        "annotation_id": a.annotation_id,
        "author": a.author,
        "results": [r.model_dump(mode="json", exclude_none=True) for r in a.results],
        "lead_time_s": a.lead_time_s,
        "label_config_version": a.label_config_version,
        "created_at": a.created_at,
        "source": a.source.value,
        "model_version": a.model_version,
        "accepted_by": a.accepted_by,
    }


def annotation_from_item(item: Any) -> Annotation:
    return Annotation.model_validate(
        {
            "annotation_id": item.annotation_id,
            "task_id": item.task_id,
            "project_id": item.project_id,
            "author": item.author,
            "results": item.results,
            "lead_time_s": float(item.lead_time_s or 0),
            "label_config_version": int(item.label_config_version),
            "created_at": item.created_at,
            "source": item.source or "human",
            "model_version": item.model_version,
            "accepted_by": item.accepted_by,
        }
    )


IMPORT_FIELDS = (
    "import_id",
    "project_id",
    "source",
    "bucket",
    "key",
    "status",
    "lines_total",
    "tasks_created",
    "duplicates",
    "errors",
    "error_report_key",
    "ranges_total",
    "ranges_done",
    "created_by",
    "created_at",
    "updated_at",
    "completed_at",
)


def import_from_item(item: Any) -> Import:
    return Import.model_validate({f: getattr(item, f) for f in IMPORT_FIELDS})
