"""Annotation use cases: results are validated against the project's label configuration.

Who may write an annotation outside the queue (``POST …/annotations``), and when:

* project managers and admins, on any task that is not closed (approved, exported, archived);
* anyone else only on the task whose labelling lease they hold (a normal or gold lease), as a
  draft beside the queue's submit; without one: 409 ``lease_not_held``;
* nobody on a closed task (409 ``task_closed``) or in an archived project (409 ``project_archived``).

Such an annotation is never what an approved task exports (that is the annotation its approval
accepted) and counts in no activity or quality counter.
"""

from __future__ import annotations

from typing import Any

from serval import ids
from serval.adapters import annotations as annotation_store
from serval.adapters import mapping, projects, tasks
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Annotation, AnnotationCreate, utcnow
from serval.domain.permissions import annotates_outside_queue, sees_all_annotations
from serval.domain.results import problem_details, validate_results
from serval.errors import Conflict, LeaseNotHeld, NotFound, TaskClosed, ValidationFailed
from serval.logic import projects as projects_logic

S = TaskStatus
CLOSED = (S.APPROVED, S.EXPORTED, S.ARCHIVED)


def _check_open(item: Any, holder: str | None) -> None:
    """409 unless the task takes an annotation: not closed, and leased by ``holder`` when given."""
    status = S(item.status)
    if status in CLOSED:
        raise TaskClosed(
            f"task {item.task_id} is {status.value}: its labels are final",
            details={"task_id": str(item.task_id), "status": status.value},
        )
    labelling = status is S.LEASED or item.gold is not None  # a gold lease keeps the task's status
    if holder is not None and not (labelling and item.lease_owner == holder):
        raise LeaseNotHeld(
            f"you do not hold a lease on task {item.task_id}; take tasks with /next",
            details={"task_id": str(item.task_id), "status": status.value},
        )


def create(
    project_id: str, task_id: str, request: AnnotationCreate, actor: Actor, grant: ProjectAccess
) -> Annotation:
    project = projects_logic.active(project_id)
    item = tasks.get_item(project_id, task_id)
    holder = None if annotates_outside_queue(actor, grant.member_role) else actor.user_id
    _check_open(item, holder)
    config = project.label_config
    if request.label_config_version is not None and request.label_config_version != config.version:
        raise Conflict(
            f"the label configuration is at version {config.version}, not {request.label_config_version}",
            details={"current_version": config.version},
        )
    text_length = mapping.task_from_item(item).primary_text_length()
    problems = validate_results(config, list(request.results), text_length)
    if problems:
        raise ValidationFailed(
            "the annotation does not fit the label configuration", details=problem_details(problems)
        )
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
    try:
        annotation_store.create(annotation, actor, CLOSED, holder)
    except annotation_store.Refused:
        _check_open(tasks.get_item(project_id, task_id), holder)  # 404, or why it changed meanwhile
        raise Conflict(f"task {task_id} changed meanwhile; retry", details={"task_id": task_id}) from None
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
