"""Webhook subscriptions, their delivery log and replays (docs/webhooks.md).

Two scopes with the same routes: a project's (``/projects/{project_id}/webhooks``, its
managers) and the organisation's (``/webhooks``, admins; they receive every project's events).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.permissions import Action
from serval.domain.subscriptions import (
    Delivery,
    DeliveryOutcome,
    ReplayRange,
    ReplayResult,
    SecretRotated,
    Subscription,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionUpdate,
    TestResult,
)
from serval.logic import webhooks

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=128)]
F = TypeVar("F", bound=Callable[..., Any])
Outcome = Annotated[DeliveryOutcome | None, Query(description="Only attempts with this outcome.")]
From = Annotated[str | None, Query(alias="from", max_length=40, description="ISO-8601 UTC, inclusive.")]
To = Annotated[str | None, Query(max_length=40, description="ISO-8601 UTC, exclusive.")]

PROJECT = "/projects/<project_id>/webhooks"
ORG = "/webhooks"
T = ["webhooks"]


def _both(method: str, suffix: str, summary: str, status: int = 200) -> Callable[[F], F]:
    """Register a project route (``PROJECT + suffix``, its managers) and the organisation's twin
    (``ORG + suffix``, admins): the same function, called with ``project_id=None``."""

    def register(func: F) -> F:
        router.route(
            PROJECT + suffix,
            method,
            status_code=status,
            tags=T,
            summary=summary,
            **guarded(Action.WEBHOOK_MANAGE),
        )(func)
        signature = inspect.signature(func)

        def organisation(**kwargs: Any) -> Any:
            return func(project_id=None, **kwargs)

        organisation.__name__ = f"org_{func.__name__}"
        organisation.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name != "project_id"]
        )
        router.route(
            ORG + suffix,
            method,
            status_code=status,
            tags=T,
            summary=f"{summary} (organisation-wide)",
            **guarded(Action.WEBHOOK_MANAGE_ALL),
        )(organisation)
        return func

    return register


@_both("POST", "", "Create a subscription; the answer holds its signing secret, shown this once", 201)
def create(project_id: Id, body: SubscriptionCreate) -> SubscriptionCreated:
    return webhooks.create(project_id, body, actor(router))


@_both("GET", "", "List the subscriptions")
def list_subscriptions(project_id: Id) -> Page[Subscription]:
    return Page[Subscription](items=webhooks.list_all(project_id), next_cursor=None)


@_both("GET", "/<webhook_id>", "Get a subscription")
def get(project_id: Id, webhook_id: Id) -> Subscription:
    return webhooks.get(project_id, webhook_id)


@_both("PATCH", "/<webhook_id>", "Change a subscription's URL, description or event filter")
def update(project_id: Id, webhook_id: Id, body: SubscriptionUpdate) -> Subscription:
    return webhooks.update(project_id, webhook_id, body, actor(router))


@_both("DELETE", "/<webhook_id>", "Delete a subscription", 204)
def delete(project_id: Id, webhook_id: Id) -> None:
    webhooks.delete(project_id, webhook_id, actor(router))


@_both("POST", "/<webhook_id>/pause", "Pause deliveries (the skipped events stay replayable)")
def pause(project_id: Id, webhook_id: Id) -> Subscription:
    return webhooks.pause(project_id, webhook_id, actor(router))


@_both("POST", "/<webhook_id>/resume", "Resume a paused or disabled subscription")
def resume(project_id: Id, webhook_id: Id) -> Subscription:
    return webhooks.resume(project_id, webhook_id, actor(router))


@_both(
    "POST", "/<webhook_id>/rotate-secret", "Rotate the signing secret (the old one signs too for the overlap)"
)
def rotate(project_id: Id, webhook_id: Id) -> SecretRotated:
    return webhooks.rotate_secret(project_id, webhook_id, actor(router))


@_both("POST", "/<webhook_id>/test", "Send a webhook.test event now; answers with the attempt")
def test(project_id: Id, webhook_id: Id) -> TestResult:
    return webhooks.send_test(project_id, webhook_id, actor(router))


@_both("GET", "/<webhook_id>/deliveries", "The subscription's delivery log, newest first")
def deliveries(
    project_id: Id,
    webhook_id: Id,
    outcome: Outcome = None,
    since: From = None,
    to: To = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Delivery]:
    items, next_cursor = webhooks.deliveries_of(
        project_id, webhook_id, outcome=outcome, since=since, until=to, limit=limit, cursor=cursor
    )
    return Page[Delivery](items=items, next_cursor=next_cursor)


@_both("POST", "/<webhook_id>/deliveries/<event_id>/replay", "Replay one delivery (same webhook-id)", 202)
def replay(project_id: Id, webhook_id: Id, event_id: Id) -> ReplayResult:
    return webhooks.replay_one(project_id, webhook_id, event_id, actor(router))


@_both("POST", "/<webhook_id>/replay", "Replay every event of a time range, once each", 202)
def replay_range(project_id: Id, webhook_id: Id, body: ReplayRange) -> ReplayResult:
    return webhooks.replay_range(project_id, webhook_id, body, actor(router))


@router.get(
    "/projects/<project_id>/events/<event_id>/deliveries",
    tags=T,
    summary="Every attempt to deliver one event to the project's subscriptions",
    **guarded(Action.WEBHOOK_MANAGE),
)
def event_deliveries(
    project_id: Id, event_id: Id, limit: Limit = 50, cursor: Cursor = None
) -> Page[Delivery]:
    items, next_cursor = webhooks.deliveries_of_event(project_id, event_id, limit, cursor)
    return Page[Delivery](items=items, next_cursor=next_cursor)


@router.get(
    "/events/<event_id>/deliveries",
    tags=T,
    summary="Every attempt to deliver one event, to any subscription",
    **guarded(Action.WEBHOOK_MANAGE_ALL),
)
def org_event_deliveries(event_id: Id, limit: Limit = 50, cursor: Cursor = None) -> Page[Delivery]:
    items, next_cursor = webhooks.deliveries_of_event(None, event_id, limit, cursor)
    return Page[Delivery](items=items, next_cursor=next_cursor)
