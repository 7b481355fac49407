"""Project membership: project managers add and remove members and change their roles."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.access import Member, MemberAdd, MemberUpdate
from serval.domain.permissions import Action
from serval.logic import members

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=128)]
BASE = "/projects/<project_id>/members"


@router.get(BASE, tags=["members"], summary="List the project's members", **guarded(Action.MEMBER_READ))
def list_members(project_id: Id, limit: Limit = 50, cursor: Cursor = None) -> Page[Member]:
    items, next_cursor = members.list_page(project_id, limit, cursor)
    return Page[Member](items=items, next_cursor=next_cursor)


@router.post(
    BASE,
    status_code=201,
    tags=["members"],
    summary="Add a member with a project role (at most their global role allows)",
    **guarded(Action.MEMBER_MANAGE),
)
def add_member(project_id: Id, body: MemberAdd) -> Member:
    return members.add(project_id, body, actor(router))


@router.get(BASE + "/<user_id>", tags=["members"], summary="Get a member", **guarded(Action.MEMBER_READ))
def get_member(project_id: Id, user_id: Id) -> Member:
    return members.get(project_id, user_id)


@router.patch(
    BASE + "/<user_id>", tags=["members"], summary="Change a member's role", **guarded(Action.MEMBER_MANAGE)
)
def update_member(project_id: Id, user_id: Id, body: MemberUpdate) -> Member:
    return members.update(project_id, user_id, body, actor(router))


@router.delete(
    BASE + "/<user_id>",
    status_code=204,
    tags=["members"],
    summary="Remove a member (a project keeps at least one manager)",
    **guarded(Action.MEMBER_MANAGE),
)
def remove_member(project_id: Id, user_id: Id) -> None:
    members.remove(project_id, user_id, actor(router))
