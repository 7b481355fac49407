"""Webhook subscriptions: items in the tasks table, one partition per scope (a project or the
organisation), every change audited in the same transaction. Secrets stay here: they leave
only through :func:`signing_secrets` (to sign a delivery) and the create/rotate results."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from serval import keys
from serval.adapters import audit, dynamo
from serval.domain.actor import Actor
from serval.domain.models import iso_of, utcnow
from serval.domain.subscriptions import Scope, Subscription, SubscriptionStatus
from serval.errors import Conflict, NotFound

# What an audit record shows of a subscription: everything the API shows, never a secret.
_AUDITED = set(Subscription.model_fields)


def to_subscription(item: Any, now: float | None = None) -> Subscription:
    until = item.previous_secret_until
    live = item.previous_secret is not None and until is not None and until > (now or time.time())
    return Subscription(
        webhook_id=item.webhook_id,
        scope=Scope(item.scope),
        project_id=item.project_id,
        url=item.url,
        description=item.description,
        event_types=list(item.event_types or []),
        status=SubscriptionStatus(item.status),
        disabled_reason=item.disabled_reason,
        consecutive_failures=int(item.consecutive_failures or 0),
        failing_since=item.failing_since,
        previous_secret_expires_at=iso_of(float(until)) if live else None,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
    )


def signing_secrets(item: Any, now: float | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one during
    its overlap after a rotation."""
    found = [str(item.secret)]
    until = item.previous_secret_until
    if item.previous_secret and until is not None and float(until) > (now or time.time()):
        found.append(str(item.previous_secret))
    return found


def _view(item: Any) -> dict[str, Any]:
    return to_subscription(item).model_dump(mode="json", include=_AUDITED)


def _target(item: Any) -> str:
    return f"{item.project_id or keys.ORG_WEBHOOKS_SCOPE}/{item.webhook_id}"


def new_item(
    webhook_id: str,
    project_id: str | None,
    url: str,
    description: str,
    event_types: list[str],
    secret: str,
    actor: Actor,
) -> Any:
    now = utcnow()
    return dynamo.tasks().WebhookItem(
        PK=keys.webhooks_pk(project_id),
        SK=keys.webhook_sk(webhook_id),
        webhook_id=webhook_id,
        scope=(Scope.PROJECT if project_id else Scope.ORG).value,
        project_id=project_id,
        url=url,
        description=description,
        event_types=event_types,
        status=SubscriptionStatus.ACTIVE.value,
        consecutive_failures=0,
        secret=secret,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        version=1,
    )


def create(item: Any, actor: Actor) -> None:
    tx = dynamo.Tx()
    tx.put(item, condition="attribute_not_exists(PK)")
    audit.record(tx, actor, "webhook.create", "webhook", _target(item), item.project_id, after=_view(item))
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("a subscription with this id exists already; retry") from exc


def list_scope(project_id: str | None) -> list[Any]:
    """Every subscription of a scope (a scope holds at most MAX_SUBSCRIPTIONS_PER_SCOPE)."""
    m = dynamo.tasks()
    return list(
        m.WebhookItem.query(keys.webhooks_pk(project_id), m.WebhookItem.SK.startswith(keys.WEBHOOK_SK_PREFIX))
    )


def get_item(project_id: str | None, webhook_id: str) -> Any:
    m = dynamo.tasks()
    try:
        return m.WebhookItem.get(
            keys.webhooks_pk(project_id), keys.webhook_sk(webhook_id), consistent_read=True
        )
    except m.WebhookItem.DoesNotExist:
        raise NotFound(
            f"webhook {webhook_id} not found" + (f" in project {project_id}" if project_id else ""),
            details={"webhook_id": webhook_id, "project_id": project_id},
        ) from None


def _set_clause(fields: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    sets, removes, names, values = [], [], {}, {}
    for i, (name, value) in enumerate(fields.items()):
        names[f"#f{i}"] = name
        if value is None:
            removes.append(f"#f{i}")
        else:
            sets.append(f"#f{i} = :f{i}")
            values[f":f{i}"] = value
    expression = "SET " + ", ".join(sets) if sets else ""
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return expression.strip(), names, values


def change(before: Any, fields: Mapping[str, Any], actor: Actor, action: str) -> Any:
    """Apply ``fields`` (None removes one) to the subscription if nobody changed it since
    ``before`` was read; audited as ``action``. Returns the item as it is now."""
    at = utcnow()
    fields = {**fields, "updated_at": at, "version": int(before.version) + 1}
    expression, names, values = _set_clause(fields)
    names["#v"] = "version"
    values[":v"] = int(before.version)
    tx = dynamo.Tx()
    tx.update(
        dynamo.tasks().table_name,
        dynamo.item_key(before.PK, before.SK),
        expression,
        names=names,
        values=values,
        condition="#v = :v",
    )
    after = dynamo.tasks().WebhookItem.from_raw_data(before.serialize())
    for name, value in fields.items():
        setattr(after, name, value)
    audit.record(
        tx,
        actor,
        action,
        "webhook",
        _target(before),
        before.project_id,
        before=_view(before),
        after=_view(after),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict(
            "the subscription changed meanwhile; read it again",
            details={"webhook_id": before.webhook_id},
        ) from exc
    return after


def delete(before: Any, actor: Actor) -> None:
    tx = dynamo.Tx()
    tx.delete(
        dynamo.tasks().table_name,
        dynamo.item_key(before.PK, before.SK),
        condition="version = :v",
        values={":v": int(before.version)},
    )
    audit.record(
        tx, actor, "webhook.delete", "webhook", _target(before), before.project_id, before=_view(before)
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("the subscription changed meanwhile; read it again") from exc


def record_use(item: Any, actor: Actor, action: str, details: dict[str, Any]) -> None:
    """Audit an operation that sends the subscription events without changing it (a test event,
    a replay): who made Serval send what where."""
    tx = dynamo.Tx()
    audit.record(
        tx, actor, action, "webhook", _target(item), item.project_id, after={"url": item.url, **details}
    )
    tx.commit()


# ---- the dispatcher's bookkeeping -----------------------------------------------------------


def get_many(refs: Iterable[tuple[str | None, str]]) -> dict[str, Any]:
    """Subscriptions by id, for (project_id or None, webhook_id) pairs; missing ones are absent."""
    m = dynamo.tasks()
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return {}
    found = m.WebhookItem.batch_get([(keys.webhooks_pk(p), keys.webhook_sk(w)) for p, w in wanted])
    return {item.webhook_id: item for item in found}


def record_delivered(item: Any) -> None:
    """A delivery succeeded: the run of failures (if any) ends."""
    if not item.consecutive_failures and not item.failing_since:
        return
    _update_counters(item, "SET consecutive_failures = :zero REMOVE failing_since", {":zero": 0})


def _update_counters(item: Any, expression: str, values: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    from serval.adapters import clients

    try:
        response = clients.dynamodb().update_item(
            TableName=dynamo.tasks().table_name,
            Key={keys.PK: {"S": item.PK}, keys.SK: {"S": item.SK}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={k: dynamo.serialize(v) for k, v in values.items()},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return {}  # deleted meanwhile: nothing to count
        raise
    return dict(response.get("Attributes", {}))


def record_failed(item: Any, failures: int) -> tuple[int, str | None]:
    """``failures`` more attempts failed: returns the run's length and when it began."""
    attributes = _update_counters(
        item,
        "ADD consecutive_failures :n SET failing_since = if_not_exists(failing_since, :now)",
        {":n": failures, ":now": utcnow()},
    )
    if not attributes:
        return 0, None
    return int(attributes["consecutive_failures"]["N"]), attributes.get("failing_since", {}).get("S")


def disable(item: Any, reason: str) -> bool:
    """Disable an active subscription (audited as the dispatcher); False when it was not active
    (paused, disabled or deleted meanwhile). The change's stream record emits webhook.disabled."""
    current = item
    tx = dynamo.Tx()
    at = utcnow()
    tx.update(
        dynamo.tasks().table_name,
        dynamo.item_key(current.PK, current.SK),
        "SET #s = :disabled, disabled_reason = :reason, updated_at = :at ADD version :one",
        names={"#s": "status"},
        values={
            ":disabled": SubscriptionStatus.DISABLED.value,
            ":reason": reason,
            ":at": at,
            ":one": 1,
            ":active": SubscriptionStatus.ACTIVE.value,
        },
        condition="#s = :active",
    )
    after = dynamo.tasks().WebhookItem.from_raw_data(current.serialize())
    after.status, after.disabled_reason, after.updated_at = SubscriptionStatus.DISABLED.value, reason, at
    audit.record(
        tx,
        Actor.system("webhooks"),
        "webhook.disable",
        "webhook",
        _target(current),
        current.project_id,
        before=_view(current),
        after=_view(after),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True
