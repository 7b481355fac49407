"""Unauthenticated routes (health, API description) and the caller's own identity."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.access import MyProject
from serval.domain.permissions import Action, global_actions
from serval.logic import members
from serval.settings import settings

router = APIGatewayRouter()


class Health(BaseModel):
    status: str
    environment: str


class Me(BaseModel):
    user_id: str
    username: str
    email: str | None
    groups: list[str]
    role: str
    actions: list[str] = Field(description="Global actions; per-project actions are in /me/projects.")


@router.get("/health", tags=["system"], summary="Liveness")
def health() -> Health:
    return Health(status="ok", environment=settings().SERVAL_ENV)


@router.get("/me", tags=["system"], summary="Who am I, and what may I do", **guarded(Action.SELF_READ))
def me() -> Me:
    caller = actor(router)
    actions = [a.value for a in global_actions(caller)]
    return Me(
        user_id=caller.user_id,
        username=caller.username,
        email=caller.email,
        groups=list(caller.groups),
        role=caller.role,
        actions=actions,
    )


@router.get(
    "/me/projects",
    tags=["system"],
    summary="The projects I belong to, with my role and actions in each",
    **guarded(Action.PROJECT_LIST),
)
def my_projects(limit: Limit = 50, cursor: Cursor = None) -> Page[MyProject]:
    items, next_cursor = members.my_projects(actor(router), limit, cursor)
    return Page[MyProject](items=items, next_cursor=next_cursor)
