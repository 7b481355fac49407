"""User management (admins) and the user directory (admins and managers)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.access import GroupsUpdate, User, UserInvite
from serval.domain.permissions import Action
from serval.logic import users

router = APIGatewayRouter()
UserId = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/users", tags=["users"], summary="List users by email", **guarded(Action.USER_READ))
def list_users(
    email_prefix: Annotated[str | None, Query(min_length=1, max_length=254)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[User]:
    items, next_cursor = users.list_page(limit, cursor, email_prefix)
    return Page[User](items=items, next_cursor=next_cursor)


@router.post(
    "/users",
    status_code=201,
    tags=["users"],
    summary="Invite a user (Cognito AdminCreateUser) with a temporary password or an email invitation",
    **guarded(Action.USER_MANAGE),
)
def invite_user(body: UserInvite) -> User:
    return users.invite(body, actor(router))


@router.get("/users/<user_id>", tags=["users"], summary="Get a user", **guarded(Action.USER_READ))
def get_user(user_id: UserId) -> User:
    return users.get(user_id)


@router.put(
    "/users/<user_id>/groups",
    tags=["users"],
    summary="Set a user's global roles (Cognito groups)",
    **guarded(Action.USER_MANAGE),
)
def set_groups(user_id: UserId, body: GroupsUpdate) -> User:
    return users.set_groups(user_id, body, actor(router))


@router.post(
    "/users/<user_id>/disable",
    tags=["users"],
    summary="Disable a user: sign-in stops and their existing tokens stop working at the API",
    **guarded(Action.USER_MANAGE),
)
def disable_user(user_id: UserId) -> User:
    return users.set_enabled(user_id, False, actor(router))


@router.post(
    "/users/<user_id>/enable", tags=["users"], summary="Enable a user", **guarded(Action.USER_MANAGE)
)
def enable_user(user_id: UserId) -> User:
    return users.set_enabled(user_id, True, actor(router))
