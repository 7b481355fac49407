from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from api.telemetry import count
from serval.domain.models import Project, ProjectCreate, ProjectUpdate
from serval.domain.permissions import Action
from serval.logic import projects

router = APIGatewayRouter()
ProjectId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/projects",
    status_code=201,
    tags=["projects"],
    summary="Create a project",
    **guarded(Action.PROJECT_CREATE),
)
def create_project(body: ProjectCreate) -> Project:
    project = projects.create(body, actor(router))
    count("ProjectCreated")
    return project


@router.get(
    "/projects",
    tags=["projects"],
    summary="List projects, newest first: every project for admins, your own for everyone else",
    **guarded(Action.PROJECT_LIST),
)
def list_projects(limit: Limit = 50, cursor: Cursor = None) -> Page[Project]:
    items, next_cursor = projects.list_page(actor(router), limit, cursor)
    return Page[Project](items=items, next_cursor=next_cursor)


@router.get(
    "/projects/<project_id>", tags=["projects"], summary="Get a project", **guarded(Action.PROJECT_READ)
)
def get_project(project_id: ProjectId) -> Project:
    return projects.get(project_id)


@router.patch(
    "/projects/<project_id>", tags=["projects"], summary="Update a project", **guarded(Action.PROJECT_UPDATE)
)
def update_project(project_id: ProjectId, body: ProjectUpdate) -> Project:
    return projects.update(project_id, body, actor(router))


@router.post(
    "/projects/<project_id>/archive",
    tags=["projects"],
    summary="Archive a project",
    **guarded(Action.PROJECT_ARCHIVE),
)
def archive_project(project_id: ProjectId) -> Project:
    return projects.archive(project_id, actor(router))


@router.post(
    "/projects/<project_id>/restore",
    tags=["projects"],
    summary="Restore an archived project: it takes work again",
    **guarded(Action.PROJECT_ARCHIVE),
)
def restore_project(project_id: ProjectId) -> Project:
    return projects.restore(project_id, actor(router))
