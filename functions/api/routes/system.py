"""Unauthenticated routes (health, API description) and the caller's own identity."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from api.guard import actor, guarded
from serval.domain.permissions import ROLE_ACTIONS, Action
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
    actions: list[str]


@router.get("/health", tags=["system"], summary="Liveness")
def health() -> Health:
    return Health(status="ok", environment=settings().SERVAL_ENV)


@router.get("/me", tags=["system"], summary="Who am I, and what may I do", **guarded(Action.PROJECT_READ))
def me() -> Me:
    caller = actor(router)
    actions = sorted({a.value for g in caller.groups for a in ROLE_ACTIONS.get(g, frozenset())})
    return Me(
        user_id=caller.user_id,
        username=caller.username,
        email=caller.email,
        groups=list(caller.groups),
        role=caller.role,
        actions=actions,
    )
