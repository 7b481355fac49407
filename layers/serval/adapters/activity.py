"""Activity counters in the tasks table: ``PROJECT#<pid>`` / ``ACTIVITY#<day>#<user>``.

Written only by :func:`add_annotation`, inside the transaction that creates the annotation,
with ADDs (atomic, so concurrent annotations never lose a count). Read by day range with a
key condition on the ``ACTIVITY#`` prefix, never a scan.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from serval import keys
from serval.adapters import clients, dynamo
from serval.domain import activity
from serval.settings import settings

ENTITY = "activity"


def add_annotation(tx: dynamo.Tx, project_id: str, user_id: str, at: str, lead_time_s: float) -> None:
    """Count one annotation of ``user_id`` made at ``at`` into its day's counter, inside ``tx``."""
    day = activity.day_of(at)
    bucket = activity.bucket_attribute(activity.bucket_of(lead_time_s))
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.activity_sk(day, user_id)),
        "ADD #n :one, #lt :lt, #bucket :one SET #e = :entity, #pid = :pid, #uid = :uid, #day = :day, #last = :at",
        names={
            "#n": "annotations",
            "#lt": "lead_time_s",
            "#bucket": bucket,
            "#e": keys.ENTITY,
            "#pid": "project_id",
            "#uid": "user_id",
            "#day": "day",
            "#last": "last_at",
        },
        values={
            ":one": 1,
            ":lt": max(0.0, float(lead_time_s)),
            ":entity": ENTITY,
            ":pid": project_id,
            ":uid": user_id,
            ":day": day,
            ":at": at,
        },
    )


def read_range(project_id: str, first: date, last: date) -> list[activity.CounterRow]:
    """Every user's counters from ``first`` to ``last`` (UTC days, inclusive): one Query, paged."""
    low, high = keys.activity_sk_range(first.isoformat(), last.isoformat())
    kwargs: dict[str, Any] = {
        "TableName": settings().TASKS_TABLE,
        "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
        "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.project_pk(project_id)},
            ":low": {"S": low},
            ":high": {"S": high},
        },
    }
    rows: list[activity.CounterRow] = []
    while True:
        response = clients.dynamodb().query(**kwargs)
        rows += [_row(raw) for raw in response.get("Items", [])]
        start = response.get("LastEvaluatedKey")
        if not start:
            return rows
        kwargs["ExclusiveStartKey"] = start


def _number(raw: dict[str, Any], name: str) -> float:
    value = raw.get(name, {}).get("N")
    return float(value) if value is not None else 0.0


def _row(raw: dict[str, Any]) -> activity.CounterRow:
    return activity.CounterRow(
        user_id=raw["user_id"]["S"],
        day=raw["day"]["S"],
        annotations=int(_number(raw, "annotations")),
        lead_time_s=round(_number(raw, "lead_time_s"), 3),
        last_at=raw.get("last_at", {}).get("S"),
        histogram=[int(_number(raw, activity.bucket_attribute(b))) for b in range(activity.BUCKETS)],
    )
