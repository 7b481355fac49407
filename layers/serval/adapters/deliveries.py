"""The webhook delivery log: one row per attempt in its own table (no stream), kept
``WEBHOOK_LOG_DAYS`` (TTL). Rows sort by time per subscription (PK/SK) and per event (GSI1).
Each row keeps the event it carried, so any logged delivery can be replayed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serval import keys
from serval.adapters import clients, dynamo
from serval.domain.subscriptions import Delivery, DeliveryOutcome
from serval.settings import settings


@dataclass(frozen=True)
class LoggedAttempt:
    """An attempt to log: the row's fields and the event it carried (its envelope)."""

    delivery: Delivery
    project_id: str | None  # the subscription's project; None for an organisation one
    event: dict[str, Any]


def _row(logged: LoggedAttempt, expires_at: int) -> dict[str, Any]:
    d = logged.delivery
    item: dict[str, Any] = {
        keys.PK: keys.delivery_pk(d.webhook_id),
        keys.SK: keys.delivery_sk(d.attempted_at, d.event_id, d.attempt),
        keys.GSI1PK: keys.event_deliveries_gsi1pk(d.event_id),
        keys.GSI1SK: f"{d.attempted_at}#{d.webhook_id}#{d.attempt:03d}",
        keys.TTL_ATTRIBUTE: expires_at,
        "subscription_project": logged.project_id or keys.ORG_WEBHOOKS_SCOPE,
        "event": json.dumps(logged.event, separators=(",", ":"), ensure_ascii=False),
        **d.model_dump(mode="json", exclude_none=True),
    }
    return {k: dynamo.serialize(v) for k, v in item.items()}


def put(attempts: Sequence[LoggedAttempt]) -> int:
    """Log the attempts (BatchWriteItem, 25 a call; one attempt: PutItem, all the API's role
    may do on the log); returns the requests made."""
    if not attempts:
        return 0
    cfg = settings()
    expires = int(time.time()) + cfg.WEBHOOK_LOG_DAYS * 86_400
    rows = [_row(a, expires) for a in attempts]
    if len(rows) == 1:
        clients.dynamodb().put_item(TableName=cfg.DELIVERIES_TABLE, Item=rows[0])
        return 1
    return dynamo.batch_write([{"PutRequest": {"Item": row}} for row in rows], table=cfg.DELIVERIES_TABLE)


def _plain(value: dict[str, Any]) -> Any:
    kind, raw = next(iter(value.items()))
    if kind == "N":
        return float(raw) if "." in raw else int(raw)
    if kind == "NULL":
        return None
    return raw


def to_delivery(row: dict[str, Any]) -> Delivery:
    fields = {k: _plain(v) for k, v in row.items() if k in Delivery.model_fields}
    defaults: dict[str, Any] = {"status": None, "error": None, "delay_s": None, "next_attempt_at": None}
    return Delivery.model_validate(defaults | fields)


def event_of(row: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(row["event"]["S"])
    return event


def subscription_project(row: dict[str, Any]) -> str | None:
    scope = str(row["subscription_project"]["S"])
    return None if scope == keys.ORG_WEBHOOKS_SCOPE else scope


@dataclass(frozen=True)
class RowPage:
    rows: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def for_subscription(
    webhook_id: str,
    *,
    since: str | None,
    until: str | None,
    outcome: DeliveryOutcome | None,
    limit: int,
    start_key: dict[str, Any] | None,
    newest_first: bool = True,
) -> RowPage:
    """A subscription's attempts in ``[since, until)``, optionally of one outcome."""
    names = {"#pk": keys.PK, "#sk": keys.SK}
    values: dict[str, Any] = {":pk": {"S": keys.delivery_pk(webhook_id)}}
    condition = "#pk = :pk"
    low, high = since or "0", until or "~"
    condition += " AND #sk BETWEEN :low AND :high"
    values[":low"], values[":high"] = {"S": low}, {"S": high}
    kwargs: dict[str, Any] = {
        "TableName": settings().DELIVERIES_TABLE,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": not newest_first,
        "Limit": limit,
    }
    if outcome is not None:
        kwargs["FilterExpression"] = "#o = :o"
        names["#o"] = "outcome"
        values[":o"] = {"S": outcome.value}
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = clients.dynamodb().query(**kwargs)
    rows = [r for r in response.get("Items", []) if until is None or r[keys.SK]["S"] < until]
    return RowPage(rows, response.get("LastEvaluatedKey"))


def for_event(event_id: str, limit: int, start_key: dict[str, Any] | None) -> RowPage:
    """Every attempt to deliver ``event_id``, oldest first."""
    kwargs: dict[str, Any] = {
        "TableName": settings().DELIVERIES_TABLE,
        "IndexName": keys.GSI1,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": keys.GSI1PK},
        "ExpressionAttributeValues": {":pk": {"S": keys.event_deliveries_gsi1pk(event_id)}},
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = clients.dynamodb().query(**kwargs)
    return RowPage(list(response.get("Items", [])), response.get("LastEvaluatedKey"))


def last_attempt(webhook_id: str, event_id: str) -> dict[str, Any] | None:
    """The latest logged attempt to deliver ``event_id`` to the subscription, or None."""
    start: dict[str, Any] | None = None
    found: dict[str, Any] | None = None
    while True:
        page = for_event(event_id, 100, start)
        for row in page.rows:
            if row["webhook_id"]["S"] == webhook_id:
                found = row
        if page.last_key is None:
            return found
        start = page.last_key
