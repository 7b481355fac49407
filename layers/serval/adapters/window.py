"""A project's active window: how many task executions are open at once.

A 1M-task backlog must not hold 1M open executions (Step Functions quotas, and cost).
Each start takes a slot from ``PROJECT#<pid>`` / ``WINDOW`` and marks the task started,
in one transaction; an execution that ends gives its slot back once (the task remembers).
Backlog tasks wait in status ``new`` and are started as slots free up.
"""

from __future__ import annotations

from enum import StrEnum

from serval import keys
from serval.adapters import dynamo
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import utcnow
from serval.settings import settings


class Claim(StrEnum):
    TAKEN = "taken"  # a slot was taken for this task now
    ALREADY = "already"  # the task was started before (a redelivery): start it again, idempotently
    FULL = "full"  # no slot: the task waits in the backlog
    GONE = "gone"  # the task no longer exists


def take_slot(project_id: str, task_id: str, window: int) -> Claim:
    table = settings().TASKS_TABLE
    pk = keys.project_pk(project_id)
    tx = dynamo.Tx()
    tx.update(
        table,
        dynamo.item_key(pk, keys.WINDOW_SK),
        "ADD #open :one SET #e = :window",
        names={"#open": "open", "#e": keys.ENTITY},
        values={":one": 1, ":window": "window", ":max": window},
        condition="attribute_not_exists(#open) OR #open < :max",
    )
    tx.update(
        table,
        dynamo.item_key(pk, keys.task_sk(task_id)),
        "SET execution_started_at = :now",
        values={":now": utcnow()},
        condition="attribute_exists(PK) AND attribute_not_exists(execution_started_at)",
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if 1 in exc.failed:
            return Claim.ALREADY if _exists(project_id, task_id) else Claim.GONE
        return Claim.FULL
    return Claim.TAKEN


def _exists(project_id: str, task_id: str) -> bool:
    m = dynamo.tasks()
    try:
        m.TaskItem.get(keys.project_pk(project_id), keys.task_sk(task_id), attributes_to_get=[keys.PK])
    except m.TaskItem.DoesNotExist:
        return False
    return True


def release_slot(project_id: str, task_id: str) -> bool:
    """Give the task's slot back, once; False when it was given back already."""
    table = settings().TASKS_TABLE
    pk = keys.project_pk(project_id)
    tx = dynamo.Tx()
    tx.update(
        table,
        dynamo.item_key(pk, keys.task_sk(task_id)),
        "SET execution_ended_at = :now",
        values={":now": utcnow()},
        condition="attribute_exists(execution_started_at) AND attribute_not_exists(execution_ended_at)",
    )
    give_back(tx, project_id)
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True


def give_back(tx: dynamo.Tx, project_id: str) -> None:
    """Free one slot of the project's window, inside ``tx`` (never below zero)."""
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.WINDOW_SK),
        "ADD #open :minus_one",
        names={"#open": "open"},
        values={":minus_one": -1, ":zero": 0},
        condition="#open > :zero",
    )


def open_count(project_id: str) -> int:
    """The project's open executions (strongly consistent)."""
    from serval.adapters import clients

    item = (
        clients.dynamodb()
        .get_item(
            TableName=settings().TASKS_TABLE,
            Key={keys.PK: {"S": keys.project_pk(project_id)}, keys.SK: {"S": keys.WINDOW_SK}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return int(item.get("open", {}).get("N", 0))


def backlog(project_id: str, limit: int) -> list[str]:
    """Up to ``limit`` task ids waiting in the backlog (status new, not started), oldest first."""
    from pynamodb.expressions.operand import Path

    m = dynamo.tasks()
    results = m.Item.by_status.query(
        keys.status_gsi1pk(project_id, TaskStatus.NEW.value),
        filter_condition=Path("execution_started_at").does_not_exist(),
        limit=limit,
        page_size=max(limit, 25),
    )
    return [item.task_id for item in results]
