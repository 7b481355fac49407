"""Per-annotator quality counters in the tasks table: ``PROJECT#<pid>`` / ``QUALITY#<user id>``.

Every write is an ADD inside the transaction of the change it counts (a consensus round's
submit, a gold answer, a review rejection), so concurrent changes never lose a count. Read
with one Query of the ``QUALITY#`` prefix, never a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serval import keys
from serval.adapters import clients, dynamo
from serval.settings import settings

ENTITY = "quality"


@dataclass(frozen=True)
class QualityCounters:
    user_id: str
    gold_answered: int = 0
    gold_score_sum: float = 0.0
    agreement_n: int = 0
    agreement_sum: float = 0.0
    review_rejections: int = 0


def _add(tx: dynamo.Tx, project_id: str, user_id: str, deltas: dict[str, float]) -> None:
    names = {f"#a{i}": name for i, name in enumerate(deltas)}
    values: dict[str, Any] = {f":a{i}": delta for i, delta in enumerate(deltas.values())}
    adds = ", ".join(f"#a{i} :a{i}" for i in range(len(deltas)))
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.quality_sk(user_id)),
        f"ADD {adds} SET #e = :entity, #pid = :pid, #uid = :uid",
        names=names | {"#e": keys.ENTITY, "#pid": "project_id", "#uid": "user_id"},
        values=values | {":entity": ENTITY, ":pid": project_id, ":uid": user_id},
    )


def add_agreement(tx: dynamo.Tx, project_id: str, user_ids: Sequence[str], value: float) -> None:
    """Count a consensus round's agreement for each of its (distinct) annotators, inside ``tx``."""
    for user_id in user_ids:
        _add(tx, project_id, user_id, {"agreement_sum": value, "agreement_n": 1})


def add_gold(tx: dynamo.Tx, project_id: str, user_id: str, score: float) -> None:
    """Count one gold answer of ``user_id`` scored ``score`` (0..1), inside ``tx``."""
    _add(tx, project_id, user_id, {"gold_score_sum": score, "gold_answered": 1})


def add_rejection(tx: dynamo.Tx, project_id: str, user_ids: Sequence[str]) -> None:
    """Count a review rejection for each annotator of the rejected round, inside ``tx``."""
    for user_id in user_ids:
        _add(tx, project_id, user_id, {"review_rejections": 1})


def _number(raw: dict[str, Any], name: str) -> float:
    value = raw.get(name, {}).get("N")
    return float(value) if value is not None else 0.0


def read_all(project_id: str) -> list[QualityCounters]:
    """Every member's quality counters in the project: one Query of the ``QUALITY#`` prefix, paged."""
    kwargs: dict[str, Any] = {
        "TableName": settings().TASKS_TABLE,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.project_pk(project_id)},
            ":prefix": {"S": keys.QUALITY_SK_PREFIX},
        },
    }
    rows: list[QualityCounters] = []
    while True:
        response = clients.dynamodb().query(**kwargs)
        rows += [
            QualityCounters(
                user_id=raw["user_id"]["S"],
                gold_answered=int(_number(raw, "gold_answered")),
                gold_score_sum=_number(raw, "gold_score_sum"),
                agreement_n=int(_number(raw, "agreement_n")),
                agreement_sum=_number(raw, "agreement_sum"),
                review_rejections=int(_number(raw, "review_rejections")),
            )
            for raw in response.get("Items", [])
        ]
        start = response.get("LastEvaluatedKey")
        if not start:
            return rows
        kwargs["ExclusiveStartKey"] = start


# ---- gold tasks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldCandidate:
    task_id: str
    status: str
    gsi1sk: str


GOLD_FREE = (
    "attribute_exists(#gold)"
    " AND (attribute_not_exists(#lease_owner) OR #lease_until < :now)"
    " AND (attribute_not_exists(#answered) OR NOT contains(#answered, :me))"
)
GOLD_NAMES = {
    "#gold": "gold",
    "#lease_owner": "lease_owner",
    "#lease_until": "lease_until",
    "#answered": "gold_answered_by",
}


def gold_candidates(
    project_id: str, user_id: str, now: int, limit: int, pages: int = 5
) -> list[GoldCandidate]:
    """Gold tasks ``user_id`` has not answered and nobody leases: a Query of the project's gold
    partition (GSI1 ``PROJECT#<pid>#GOLD``), filtered, at most ``pages`` pages."""
    kwargs: dict[str, Any] = {
        "TableName": settings().TASKS_TABLE,
        "IndexName": keys.GSI1,
        "KeyConditionExpression": "#pk = :pk",
        "FilterExpression": GOLD_FREE,
        "ExpressionAttributeNames": {"#pk": keys.GSI1PK} | GOLD_NAMES,
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.gold_gsi1pk(project_id)},
            ":now": {"N": str(now)},
            ":me": {"S": user_id},
        },
        "Limit": max(limit, 25),
    }
    found: list[GoldCandidate] = []
    for _ in range(pages):
        response = clients.dynamodb().query(**kwargs)
        found += [
            GoldCandidate(
                task_id=raw["task_id"]["S"], status=raw["status"]["S"], gsi1sk=raw[keys.GSI1SK]["S"]
            )
            for raw in response.get("Items", [])
        ]
        start = response.get("LastEvaluatedKey")
        if len(found) >= limit or not start:
            break
        kwargs["ExclusiveStartKey"] = start
    return found[:limit]
