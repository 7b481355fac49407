"""Annotation use cases: results are validated against the project's label configuration."""

from __future__ import annotations

from serval import ids
from serval.adapters import annotations as annotation_store
from serval.adapters import projects, tasks
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.models import Annotation, AnnotationCreate, utcnow
from serval.domain.permissions import sees_all_annotations
from serval.domain.results import validate_results
from serval.errors import Conflict, NotFound, ValidationFailed


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


def _only_author(project_id: str, viewer: Actor, grant: ProjectAccess) -> str | None:
    """The author whose annotations ``viewer`` is limited to, or None when they may see all."""
    see_all = projects.get(project_id).settings.annotators_see_all
    return None if sees_all_annotations(viewer, grant.member_role, see_all) else viewer.user_id


def list_page(
    project_id: str, task_id: str, viewer: Actor, grant: ProjectAccess, limit: int, cursor: str | None
) -> tuple[list[Annotation], str | None]:
    """A task's annotations; an annotator sees only their own unless the project allows more."""
    tasks.get(project_id, task_id)  # 404 for an unknown or foreign task
    author = _only_author(project_id, viewer, grant)
    return annotation_store.list_for_task(project_id, task_id, limit, cursor, author=author)


def get(project_id: str, task_id: str, annotation_id: str, viewer: Actor, grant: ProjectAccess) -> Annotation:
    """One annotation; someone else's is reported missing to an annotator limited to their own."""
    annotation = annotation_store.get(project_id, task_id, annotation_id)
    author = _only_author(project_id, viewer, grant)
    if author is not None and annotation.author != author:
        raise NotFound(f"annotation {annotation_id} not found", details={"annotation_id": annotation_id})
    return annotation
