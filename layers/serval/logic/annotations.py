"""Annotation use cases: results are validated against the project's label configuration."""

from __future__ import annotations

from serval import ids
from serval.adapters import annotations as annotation_store
from serval.adapters import projects, tasks
from serval.domain.actor import Actor
from serval.domain.models import Annotation, AnnotationCreate, utcnow
from serval.domain.results import validate_results
from serval.errors import Conflict, ValidationFailed


def create(project_id: str, task_id: str, request: AnnotationCreate, actor: Actor) -> Annotation:
    project = projects.get(project_id)
    task = tasks.get(project_id, task_id)
    config = project.label_config
    if request.label_config_version is not None and request.label_config_version != config.version:
        raise Conflict(
            f"the label configuration is at version {config.version}, not {request.label_config_version}",
            details={"current_version": config.version},
        )
    problems = validate_results(config, list(request.results), task.primary_text_length())
    if problems:
        raise ValidationFailed("the annotation does not fit the label configuration", details=problems)
    annotation = Annotation(
        annotation_id=ids.new_id("a"),
        task_id=task_id,
        project_id=project_id,
        author=actor.user_id,
        results=request.results,
        lead_time_s=request.lead_time_s,
        label_config_version=config.version,
        created_at=utcnow(),
    )
    annotation_store.create(annotation, actor)
    return annotation


def list_page(
    project_id: str, task_id: str, limit: int, cursor: str | None
) -> tuple[list[Annotation], str | None]:
    tasks.get(project_id, task_id)  # 404 for an unknown or foreign task
    return annotation_store.list_for_task(project_id, task_id, limit, cursor)


def get(project_id: str, task_id: str, annotation_id: str) -> Annotation:
    return annotation_store.get(project_id, task_id, annotation_id)
