"""Webhook subscriptions as the API manages them: per project (``project_id``) or for the
organisation (``project_id`` None). Secrets are generated here, returned once, never logged."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from serval import ids, keys
from serval.adapters import deliveries, dynamo, projects
from serval.adapters import webhooks as store
from serval.domain import events, webhooks
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.domain.subscriptions import (
    MAX_REPLAY_EVENTS,
    MAX_SUBSCRIPTIONS_PER_SCOPE,
    Delivery,
    DeliveryOutcome,
    ReplayRange,
    ReplayResult,
    SecretRotated,
    Subscription,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionStatus,
    SubscriptionUpdate,
    TestResult,
)
from serval.errors import Conflict, LimitExceeded, NotFound, ValidationFailed
from serval.logic import dispatch
from serval.settings import settings


def _check_url(url: str) -> None:
    refusal = webhooks.url_refusal(url, local=settings().SERVAL_ENV == "local")
    if refusal:
        raise ValidationFailed(refusal, details=[{"loc": ["body", "url"], "msg": refusal, "type": "url"}])


def create(project_id: str | None, request: SubscriptionCreate, actor: Actor) -> SubscriptionCreated:
    _check_url(request.url)
    if project_id:
        projects.get(project_id)  # 404 for an unknown project
    if len(store.list_scope(project_id)) >= MAX_SUBSCRIPTIONS_PER_SCOPE:
        raise LimitExceeded(
            f"a scope holds at most {MAX_SUBSCRIPTIONS_PER_SCOPE} subscriptions",
            details={"limit": MAX_SUBSCRIPTIONS_PER_SCOPE},
        )
    secret = webhooks.new_secret()
    item = store.new_item(
        ids.new_id("wh"), project_id, request.url, request.description, request.event_types, secret, actor
    )
    store.create(item, actor)
    return SubscriptionCreated(**store.to_subscription(item).model_dump(), secret=secret)


def list_all(project_id: str | None) -> list[Subscription]:
    now = time.time()
    return [store.to_subscription(i, now) for i in store.list_scope(project_id)]


def get(project_id: str | None, webhook_id: str) -> Subscription:
    return store.to_subscription(store.get_item(project_id, webhook_id))


def update(
    project_id: str | None, webhook_id: str, request: SubscriptionUpdate, actor: Actor
) -> Subscription:
    before = store.get_item(project_id, webhook_id)
    fields = request.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in fields:
        _check_url(fields["url"])
    if not fields:
        return store.to_subscription(before)
    return store.to_subscription(store.change(before, fields, actor, "webhook.update"))


def delete(project_id: str | None, webhook_id: str, actor: Actor) -> None:
    store.delete(store.get_item(project_id, webhook_id), actor)


def pause(project_id: str | None, webhook_id: str, actor: Actor) -> Subscription:
    before = store.get_item(project_id, webhook_id)
    if before.status == SubscriptionStatus.PAUSED.value:
        return store.to_subscription(before)
    if before.status != SubscriptionStatus.ACTIVE.value:
        raise Conflict(
            f"the subscription is {before.status}; resume it instead",
            details={"webhook_id": webhook_id, "status": before.status},
        )
    return store.to_subscription(
        store.change(before, {"status": SubscriptionStatus.PAUSED.value}, actor, "webhook.pause")
    )


def resume(project_id: str | None, webhook_id: str, actor: Actor) -> Subscription:
    """Paused or disabled -> active, with a clean failure count."""
    before = store.get_item(project_id, webhook_id)
    if before.status == SubscriptionStatus.ACTIVE.value:
        return store.to_subscription(before)
    fields: dict[str, Any] = {
        "status": SubscriptionStatus.ACTIVE.value,
        "disabled_reason": None,
        "consecutive_failures": 0,
        "failing_since": None,
    }
    return store.to_subscription(store.change(before, fields, actor, "webhook.resume"))


def rotate_secret(project_id: str | None, webhook_id: str, actor: Actor) -> SecretRotated:
    """A new secret; the current one keeps signing too for WEBHOOK_SECRET_OVERLAP_S. The audit
    record names who rotated, and when the old secret stops, never a secret."""
    before = store.get_item(project_id, webhook_id)
    overlap = settings().WEBHOOK_SECRET_OVERLAP_S
    secret = webhooks.new_secret()
    until = time.time() + overlap if overlap else None
    after = store.change(
        before,
        {
            "secret": secret,
            "previous_secret": before.secret if until else None,
            "previous_secret_until": until,
        },
        actor,
        "webhook.rotate_secret",
    )
    view = store.to_subscription(after)
    return SecretRotated(
        webhook_id=webhook_id, secret=secret, previous_secret_expires_at=view.previous_secret_expires_at
    )


def send_test(project_id: str | None, webhook_id: str, actor: Actor) -> TestResult:
    """Send a ``webhook.test`` event now (to a paused subscription too) and report the attempt."""
    item = store.get_item(project_id, webhook_id)
    event = events.test_event(webhook_id, project_id, utcnow(), ids.new_id("evt_test"))
    store.record_use(item, actor, "webhook.test", {"event_id": event.id})
    delivery = dispatch.deliver_now(item, event)
    return TestResult(event_id=event.id, delivery=delivery)


# ---- the delivery log ----------------------------------------------------------------------


def _bound(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{name} is not an ISO-8601 time", details=[{"loc": ["query", name], "msg": "not ISO-8601"}]
        ) from None
    return value


def deliveries_of(
    project_id: str | None,
    webhook_id: str,
    *,
    outcome: DeliveryOutcome | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Delivery], str | None]:
    """A subscription's attempts, newest first, filtered by outcome and time."""
    store.get_item(project_id, webhook_id)  # 404 unless it is this scope's
    page = deliveries.for_subscription(
        webhook_id,
        since=_bound(since, "from"),
        until=_bound(until, "to"),
        outcome=outcome,
        limit=limit,
        start_key=dynamo.decode_cursor(cursor, keys.PK, keys.delivery_pk(webhook_id)),
    )
    return [deliveries.to_delivery(r) for r in page.rows], dynamo.encode_cursor(page.last_key)


def deliveries_of_event(
    project_id: str | None, event_id: str, limit: int, cursor: str | None
) -> tuple[list[Delivery], str | None]:
    """Every attempt to deliver one event to the scope's subscriptions (a project's own; the
    organisation's admins see every subscription's)."""
    start = dynamo.decode_cursor(cursor, keys.GSI1PK, keys.event_deliveries_gsi1pk(event_id))
    page = deliveries.for_event(event_id, limit, start)
    rows = [r for r in page.rows if project_id is None or deliveries.subscription_project(r) == project_id]
    if not rows and cursor is None and page.last_key is None:
        raise NotFound(
            f"no delivery of event {event_id} is in the log"
            + (f" of project {project_id}" if project_id else ""),
            details={"event_id": event_id, "project_id": project_id},
        )
    return [deliveries.to_delivery(r) for r in rows], dynamo.encode_cursor(page.last_key)


def replay_one(project_id: str | None, webhook_id: str, event_id: str, actor: Actor) -> ReplayResult:
    """Queue the event again for the subscription: the same ``webhook-id``, the current secret."""
    item = store.get_item(project_id, webhook_id)
    row = deliveries.last_attempt(webhook_id, event_id)
    if row is None:
        raise NotFound(
            f"no delivery of event {event_id} to webhook {webhook_id} is in the log",
            details={"webhook_id": webhook_id, "event_id": event_id},
        )
    event = events.DomainEvent.model_validate(deliveries.event_of(row))
    next_attempt = int(row["attempt"]["N"]) + 1
    store.record_use(item, actor, "webhook.replay", {"event_ids": [event_id]})
    dispatch.replay_messages(item, [event], lambda _: next_attempt)
    return ReplayResult(queued=1, next_from=None)


def replay_range(project_id: str | None, webhook_id: str, window: ReplayRange, actor: Actor) -> ReplayResult:
    """Queue every event the subscription's log holds in ``[from, to)`` again, once each, at
    most MAX_REPLAY_EVENTS per call (``next_from`` continues)."""
    item = store.get_item(project_id, webhook_id)
    since, until = _bound(window.from_, "from"), _bound(window.to, "to")
    if since and until and since >= until:
        raise ValidationFailed(
            "from must be before to", details=[{"loc": ["body", "from"], "msg": "after to"}]
        )
    chosen: dict[str, tuple[events.DomainEvent, int]] = {}
    start: dict[str, Any] | None = None
    next_from: str | None = None
    while True:
        page = deliveries.for_subscription(
            webhook_id, since=since, until=until, outcome=None, limit=200, start_key=start, newest_first=False
        )
        for row in page.rows:
            delivery = deliveries.to_delivery(row)
            if delivery.event_id in chosen:
                chosen[delivery.event_id] = (
                    chosen[delivery.event_id][0],
                    max(chosen[delivery.event_id][1], delivery.attempt),
                )
                continue
            if len(chosen) >= MAX_REPLAY_EVENTS:
                next_from = delivery.attempted_at
                break
            chosen[delivery.event_id] = (
                events.DomainEvent.model_validate(deliveries.event_of(row)),
                delivery.attempt,
            )
        if next_from or page.last_key is None:
            break
        start = page.last_key
    store.record_use(
        item,
        actor,
        "webhook.replay",
        {"from": since, "to": until, "events": len(chosen), "next_from": next_from},
    )
    queued = dispatch.replay_messages(
        item, [event for event, _ in chosen.values()], lambda event_id: chosen[event_id][1] + 1
    )
    return ReplayResult(queued=queued, next_from=next_from)
