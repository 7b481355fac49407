"""Project use cases."""

from __future__ import annotations

from serval import ids
from serval.adapters import members, projects
from serval.domain import limits
from serval.domain.actor import Actor
from serval.domain.models import Project, ProjectCreate, ProjectStatus, ProjectUpdate, utcnow
from serval.domain.permissions import ProjectRole, is_admin
from serval.errors import ProjectArchived, ValidationFailed


def create(request: ProjectCreate, actor: Actor) -> Project:
    limits.check_label_config(request.label_config)
    now = utcnow()
    project = Project(
        project_id=ids.new_id("p"),
        name=request.name,
        description=request.description,
        media_types=request.media_types,
        label_config=request.label_config.model_copy(update={"version": 1}),
        settings=request.settings,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    creator = members.new(project.project_id, actor.user_id, ProjectRole.MANAGER, actor)
    projects.create(project, actor, creator)
    return project


def get(project_id: str) -> Project:
    return projects.get(project_id)


def require_active(project: Project) -> Project:
    """``project``, unless it is archived: an archived project takes no work (409 ``project_archived``)."""
    if project.status is ProjectStatus.ARCHIVED:
        raise ProjectArchived(
            f"project {project.project_id} is archived; restore it first",
            details={"project_id": project.project_id},
        )
    return project


def active(project_id: str) -> Project:
    """The project, if it takes work (404 unknown, 409 ``project_archived``)."""
    return require_active(projects.get(project_id))


def list_page(actor: Actor, limit: int, cursor: str | None) -> tuple[list[Project], str | None]:
    """Every project for an admin; the caller's own projects for everyone else."""
    if is_admin(actor):
        return projects.list_page(limit, cursor)
    mine, next_cursor = members.list_for_user(actor.user_id, limit, cursor)
    return projects.get_many([m.project_id for m in mine]), next_cursor


def update(project_id: str, change: ProjectUpdate, actor: Actor) -> Project:
    before, version = projects.get_versioned(project_id)
    require_active(before)
    updates = change.model_dump(exclude_unset=True, exclude_none=True)
    after = before.model_copy(update={k: getattr(change, k) for k in updates} | {"updated_at": utcnow()})
    if change.label_config is not None:
        limits.check_label_config(change.label_config)
        same = change.label_config.model_dump(exclude={"version"}) == before.label_config.model_dump(
            exclude={"version"}
        )
        config_version = before.label_config.version if same else before.label_config.version + 1
        config = change.label_config.model_copy(update={"version": config_version})
        after = after.model_copy(update={"label_config": config})
    problems = after.label_config.check_media(after.media_types)
    if problems:
        raise ValidationFailed("the label configuration does not fit the media types", details=problems)
    projects.replace(before, after, version, actor, "project.update")
    return after


def archive(project_id: str, actor: Actor) -> Project:
    """Archive the project: it keeps its data and exports but takes no work (idempotent)."""
    return _set_status(project_id, ProjectStatus.ARCHIVED, actor, "project.archive")


def restore(project_id: str, actor: Actor) -> Project:
    """Undo an archive: the project takes work again (idempotent on an active project)."""
    return _set_status(project_id, ProjectStatus.ACTIVE, actor, "project.restore")


def _set_status(project_id: str, status: ProjectStatus, actor: Actor, action: str) -> Project:
    """The project in ``status``, changed with its audit record in one transaction (unchanged and
    unaudited when it is in ``status`` already)."""
    before, version = projects.get_versioned(project_id)
    if before.status is status:
        return before
    after = before.model_copy(update={"status": status, "updated_at": utcnow()})
    projects.replace(before, after, version, actor, action)
    return after
