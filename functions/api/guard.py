"""Authentication and authorization at the edge of the API.

API Gateway's Cognito authorizer has verified the JWT; its claims arrive in
``requestContext.authorizer.claims``. Every protected route declares the Action it
performs with :func:`guarded`, which documents it in the OpenAPI spec
(``x-serval-action``) and enforces it before the route runs: the user must still be
enabled, and a project action needs a membership in the route's ``{project_id}``
(:mod:`serval.logic.access`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Response
from aws_lambda_powertools.event_handler.router import Router

from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.permissions import Action
from serval.errors import Unauthorized
from serval.logic import access

SECURITY_SCHEME = "cognito"
ACTION_EXTENSION = "x-serval-action"


def _groups(raw: Any) -> tuple[str, ...]:
    """``cognito:groups`` as API Gateway renders it: a list, "a,b" or "[a b]"."""
    if isinstance(raw, list):
        return tuple(str(g) for g in raw)
    if not raw:
        return ()
    text = str(raw).strip().strip("[]")
    return tuple(g for g in text.replace(",", " ").split() if g)


def actor_from_event(event: Any) -> Actor:
    context = event.request_context
    claims = (context.authorizer.raw_event or {}).get("claims") if context.authorizer else None
    if not claims or not claims.get("sub"):
        raise Unauthorized("a valid Cognito token is required")
    return Actor(
        user_id=claims["sub"],
        username=claims.get("cognito:username") or claims.get("username") or "",
        email=claims.get("email"),
        groups=_groups(claims.get("cognito:groups")),
        request_id=context.request_id,
        source_ip=context.identity.source_ip,
        user_agent=context.identity.user_agent,
    )


def _authorize(app: Any, action: Action) -> tuple[Actor, ProjectAccess | None]:
    caller = access.authenticate(actor_from_event(app.current_event))
    project_id = (app.context.get("_route_args") or {}).get("project_id")
    return access.authorize(caller, action, project_id)


AUTHORIZING = "_authorizing"  # set once the request's authorization has begun


def _guard(action: Action) -> Callable[..., Response[Any]]:
    def middleware(app: Any, next_middleware: Callable[..., Response[Any]]) -> Response[Any]:
        app.append_context(**{AUTHORIZING: True})
        caller, grant = _authorize(app, action)
        app.append_context(actor=caller, access=grant)
        return next_middleware(app)

    return middleware


def authorize_matched_route(app: Any) -> None:
    """Authorize the current request for the route Powertools matched, unless its guard has.

    Request validation (and reading the body) runs before route middlewares, so the error
    handlers call this first: a caller who may not use a route learns nothing about its body.
    """
    if app.context.get(AUTHORIZING):
        return
    app.append_context(**{AUTHORIZING: True})
    route = app.context.get("_route")
    extensions = getattr(route, "openapi_extensions", None) or {}
    action = extensions.get(ACTION_EXTENSION)
    if action:
        _authorize(app, Action(action))


def guarded(action: Action) -> dict[str, Any]:
    """Route keyword arguments for a protected route performing ``action``."""
    return {
        "security": [{SECURITY_SCHEME: []}],
        "openapi_extensions": {ACTION_EXTENSION: action.value},
        "middlewares": [_guard(action)],
    }


def actor(router: Router) -> Actor:
    """The caller of the current request (set by the route's guard)."""
    caller: Actor = router.context["actor"]
    return caller


def project_access(router: Router) -> ProjectAccess:
    """The caller's access to the route's project (set by the guard of a project route)."""
    grant: ProjectAccess | None = router.context.get("access")
    if grant is None:
        raise RuntimeError("project_access() used on a route without a project action")
    return grant
