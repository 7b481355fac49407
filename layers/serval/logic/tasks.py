"""Task use cases: bulk create (idempotent), list, get, patch, delete."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serval import ids, keys
from serval.adapters import imports, projects, tasks
from serval.adapters.tasks import TaskFilter  # the listing's filter, built by the caller
from serval.domain import limits, manifest
from serval.domain.actor import Actor
from serval.domain.models import (
    ImportSource,
    ImportStatus,
    Project,
    Task,
    TaskCreate,
    TaskPatch,
    TaskSource,
    new_task,
)
from serval.errors import ItemTooLarge, ValidationFailed
from serval.logic import projects as projects_logic
from serval.logic import workflow
from serval.settings import settings


class TaskInput(BaseModel):
    """A task in a bulk-create call. Data values may be ``s3://`` URIs, keys relative to the
    project's prefix, inline text, or explicit ``{"kind": ...}`` references."""

    data: dict[str, str | dict[str, Any]] = Field(min_length=1, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    priority: int = 0
    external_id: str | None = None
    predictions: list[dict[str, Any]] = Field(default_factory=list)


class BulkCreateResult(BaseModel):
    import_id: str
    created: int
    duplicates: int
    task_ids: list[str]
    replayed: bool = Field(
        default=False, description="True when this repeats an earlier call's Idempotency-Key."
    )
    refused: list[str] = Field(
        default_factory=list,
        description="Ids of tasks DynamoDB refused to store (not created, counted as the import's errors).",
    )


def _normalize(project: Project, items: list[TaskInput]) -> list[TaskCreate]:
    """Resolve references with the same rules as manifests; every problem is reported at once."""
    prefix = keys.project_data_prefix(project.project_id)
    ctx = manifest.ManifestContext(settings().DATA_BUCKET, prefix, prefix)
    out: list[TaskCreate] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            spec = manifest.task_from_object(ctx, item.model_dump(exclude_none=True))
            media_type = manifest.primary_media(spec)
            if media_type not in project.media_types:
                raise ValueError(
                    f"the task is {media_type.value}; the project takes {[m.value for m in project.media_types]}"
                )
            out.append(spec)
        except ValueError as exc:
            problems.append({"index": index, "error": manifest.explain(exc)})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} of {len(items)} tasks are invalid; nothing was created", details=problems
        )
    return out


# How long a bulk create holds its import: a retry with the same Idempotency-Key after a crash
# resumes it once this has passed (its own tasks, already written, then count as created).
CREATE_LEASE_SECONDS = 120


def bulk_create(
    project_id: str, items: list[TaskInput], actor: Actor, idempotency_key: str | None
) -> BulkCreateResult:
    cfg = settings()
    if not 1 <= len(items) <= cfg.MAX_BULK_CREATE:
        raise ValidationFailed(
            f"send between 1 and {cfg.MAX_BULK_CREATE} tasks per call; upload a manifest for more",
            details={"count": len(items)},
        )
    project = projects_logic.active(project_id)
    specs = _normalize(project, items)
    import_id = (
        ids.stable_id("imp", project_id, "api", idempotency_key) if idempotency_key else ids.new_id("imp")
    )
    task_ids = [ids.task_id(project_id, s.external_id, (import_id, i)) for i, s in enumerate(specs)]
    new_tasks = [
        new_task(
            s,
            task_id=task_id,
            project_id=project_id,
            media_type=manifest.primary_media(s),
            import_id=import_id,
            source=TaskSource(line=i + 1),
        )
        for i, (task_id, s) in enumerate(zip(task_ids, specs, strict=True))
    ]
    _check_sizes(new_tasks)
    claim = imports.claim(
        project_id,
        import_id,
        ImportSource.API,
        None,
        None,
        actor,
        lease_seconds=CREATE_LEASE_SECONDS,
        audit_start=False,
        fingerprint=ids.fingerprint(items) if idempotency_key else None,
    )
    if claim is None:
        done = imports.get(project_id, import_id)
        return BulkCreateResult(
            import_id=import_id,
            created=done.tasks_created,
            duplicates=done.duplicates,
            task_ids=task_ids,
            replayed=True,
        )
    result = tasks.put_new(project_id, new_tasks, import_id)
    refused = [r.task.task_id for r in result.refused]
    claim = imports.checkpoint(
        claim,
        len(new_tasks),
        len(result.created),
        len(result.duplicates),
        counter_deltas={},
        lease_seconds=CREATE_LEASE_SECONDS,
    )
    status = ImportStatus.COMPLETED_WITH_ERRORS if refused else ImportStatus.COMPLETED
    imports.complete(claim, len(new_tasks), len(refused), None, status, actor, affected_ids=result.created)
    return BulkCreateResult(
        import_id=import_id,
        created=len(result.created),
        duplicates=len(result.duplicates),
        task_ids=task_ids,
        refused=refused,
    )


def _check_sizes(new_tasks: list[Task]) -> None:
    """Refuse the call (writing nothing) when a task would be over the stored-size limit."""
    problems = []
    for index, task in enumerate(new_tasks):
        try:
            tasks.check_size(task)
        except ItemTooLarge as exc:
            problems.append({"index": index, "error": exc.message} | exc.details)
    if problems:
        raise ItemTooLarge(
            f"{len(problems)} of {len(new_tasks)} tasks are larger than {limits.MAX_TASK_BYTES} bytes stored; "
            "put large text in S3; nothing was created",
            details=problems,
        )


def list_page(
    project_id: str, f: TaskFilter, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    projects.get(project_id)  # 404 for an unknown project rather than an empty list
    return tasks.list_page(project_id, f, limit, cursor)


def get(project_id: str, task_id: str) -> Task:
    return tasks.get(project_id, task_id)


def patch(project_id: str, task_id: str, change: TaskPatch, actor: Actor) -> Task:
    projects_logic.active(project_id)
    return tasks.patch(project_id, task_id, change, actor)


def delete(project_id: str, task_id: str, actor: Actor) -> None:
    """Delete a task; its execution (if open) ends, and its window slot goes to the backlog."""
    projects_logic.active(project_id)
    workflow.end_deleted(project_id, tasks.delete(project_id, task_id, actor))
