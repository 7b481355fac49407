"""Queue access on the tasks table: candidate windows from GSI1, and conditional status transitions.

A :class:`Transition` is one conditional UpdateItem of a task item (status, GSI1 keys and any
queue attributes), committed in one transaction with the per-status counter deltas, the audit
record and whatever else the caller adds (an annotation, an activity counter). A failed
condition cancels everything and raises :class:`Lost`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from serval import keys
from serval.adapters import audit, clients, dynamo
from serval.domain.actor import Actor
from serval.domain.executions import current_execution
from serval.domain.handoffs import GRACE_S, Handoff
from serval.domain.lifecycle import TaskStatus, WaitStep, check_transition, waiting_step
from serval.domain.models import utcnow
from serval.errors import LeaseNotHeld
from serval.settings import settings

MAX_CANDIDATE_PAGES = 4  # a filtered window reads at most this many pages


class Lost(Exception):
    """The task was not in the expected state (another caller won, or it moved on)."""


@dataclass(frozen=True)
class Candidate:
    task_id: str
    status: TaskStatus
    gsi1sk: str


# The lease's eligibility rules as a DynamoDB condition (see serval.domain.queue.may_take);
# ``:now`` is the time of the lease (a reservation that ended is anyone's).
ELIGIBLE = (
    "(attribute_not_exists(#assignee) OR #assignee = :me OR #assigned_until < :now)"
    " AND (attribute_not_exists(#annotators) OR NOT contains(#annotators, :me))"
    " AND (attribute_not_exists(#skipped) OR NOT contains(#skipped, :me))"
)
ELIGIBLE_NAMES = {
    "#assignee": "assignee",
    "#assigned_until": "assigned_until",
    "#annotators": "annotators",
    "#skipped": "skipped_by",
}
# A reservation's attributes: the member, when it ends, and the task's place in GSI3.
RESERVATION = ("assignee", "assigned_until", keys.GSI3PK, keys.GSI3SK)


def reservation(project_id: str, task_id: str, user_id: str) -> dict[str, Any]:
    """The attributes that reserve a task for ``user_id`` until ``RESERVATION_SECONDS`` from now."""
    return {
        "assignee": user_id,
        "assigned_until": int(time.time()) + settings().RESERVATION_SECONDS,
        keys.GSI3PK: keys.assignee_gsi3pk(user_id),
        keys.GSI3SK: keys.assignee_gsi3sk(project_id, task_id),
    }


NOT_AN_ANNOTATOR = "(attribute_not_exists(#annotators) OR NOT contains(#annotators, :me))"
# A reviewer is offered neither their own work nor a task they skipped in review.
MAY_REVIEW = (
    f"{NOT_AN_ANNOTATOR} AND (attribute_not_exists(#review_skipped) OR NOT contains(#review_skipped, :me))"
)
MAY_REVIEW_NAMES = {"#annotators": "annotators", "#review_skipped": "review_skipped_by"}


def candidates(
    project_id: str,
    status: TaskStatus,
    user_id: str,
    limit: int,
    *,
    below: str | None = None,
    review: bool = False,
) -> list[Candidate]:
    """Up to ``limit`` tasks at the head of a status partition that ``user_id`` may take.

    ``below`` bounds GSI1SK (expired leases); ``review`` applies the reviewer's rule (never
    one's own task) instead of the annotator's. One Query per page; never scans.
    """
    condition = "#g1pk = :pk" + (" AND #g1sk < :below" if below else "")
    names = {"#g1pk": keys.GSI1PK, "#g1sk": keys.GSI1SK}
    values: dict[str, Any] = {":pk": {"S": keys.status_gsi1pk(project_id, status)}, ":me": {"S": user_id}}
    if not review:
        values[":now"] = {"N": str(int(time.time()))}
    if below:
        values[":below"] = {"S": below}
    if review:
        names |= MAY_REVIEW_NAMES
        filter_expression = MAY_REVIEW
    else:
        names |= ELIGIBLE_NAMES
        filter_expression = ELIGIBLE
    kwargs: dict[str, Any] = {
        "TableName": settings().TASKS_TABLE,
        "IndexName": keys.GSI1,
        "KeyConditionExpression": condition,
        "FilterExpression": filter_expression,
        "ExpressionAttributeNames": names | {"#tid": "task_id"},
        "ExpressionAttributeValues": values,
        "ProjectionExpression": "#tid, #g1sk",
        "Limit": limit,
    }
    found: list[Candidate] = []
    for _ in range(MAX_CANDIDATE_PAGES):
        response = clients.dynamodb().query(**kwargs)
        found += [Candidate(i["task_id"]["S"], status, i[keys.GSI1SK]["S"]) for i in response["Items"]]
        start = response.get("LastEvaluatedKey")
        if len(found) >= limit or not start:
            break
        kwargs["ExclusiveStartKey"] = start
    return found[:limit]


@dataclass
class Transition:
    """One conditional change of a task item: ``source`` -> ``target`` (the same for lease moves).

    ``condition``/``names``/``values`` add to the status condition; ``append`` appends to list
    attributes; ``add`` adds to numbers. Counters move when the status does; ``metrics`` add
    to the project's quality totals on the same counter shard.
    """

    project_id: str
    task_id: str
    source: TaskStatus
    target: TaskStatus
    gsi1sk: str
    actor: Actor
    action: str
    set: dict[str, Any] = field(default_factory=dict)
    remove: Sequence[str] = ()
    append: dict[str, list[str]] = field(default_factory=dict)
    add: dict[str, int] = field(default_factory=dict)
    condition: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    audit_after: dict[str, Any] | None = None
    gsi1pk: str | None = None  # default: the target status's partition (gold tasks keep their own)
    metrics: dict[str, float] = field(default_factory=dict)  # project quality totals (dynamo.METRICS)
    audited: bool = True  # False: a bulk job's change (the job writes one record for all)


def apply(change: Transition, tx: dynamo.Tx | None = None) -> None:
    """Commit ``change`` (with whatever ``tx`` already holds). Raises :class:`Lost` on a failed condition."""
    if change.source != change.target:
        check_transition(change.source, change.target)
    tx = tx or dynamo.Tx()
    now = utcnow()
    names: dict[str, str] = {"#status": "status", "#g1pk": keys.GSI1PK, "#g1sk": keys.GSI1SK}
    values: dict[str, Any] = {
        ":to": change.target.value,
        ":from": change.source.value,
        ":g1pk": change.gsi1pk or keys.status_gsi1pk(change.project_id, change.target.value),
        ":g1sk": change.gsi1sk,
        ":now_iso": now,
        ":one": 1,
    }
    sets = ["#status = :to", "#g1pk = :g1pk", "#g1sk = :g1sk", "updated_at = :now_iso"]
    for i, (name, value) in enumerate(change.set.items()):
        names[f"#s{i}"] = name
        values[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    if change.append:
        values[":empty"] = []
    for i, (name, items) in enumerate(change.append.items()):
        names[f"#l{i}"] = name
        values[f":l{i}"] = items
        sets.append(f"#l{i} = list_append(if_not_exists(#l{i}, :empty), :l{i})")
    expression = "SET " + ", ".join(sets)
    removes = [f"#r{i}" for i in range(len(change.remove))]
    names |= {f"#r{i}": name for i, name in enumerate(change.remove)}
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    adds = ["version :one"]
    for i, (name, delta) in enumerate(change.add.items()):
        names[f"#n{i}"] = name
        values[f":n{i}"] = delta
        adds.append(f"#n{i} :n{i}")
    expression += " ADD " + ", ".join(adds)
    condition = "#status = :from" + (f" AND ({change.condition})" if change.condition else "")
    index = len(tx)
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(change.project_id), keys.task_sk(change.task_id)),
        expression,
        names=names | change.names,
        values=values | change.values,
        condition=condition,
    )
    deltas = {change.source.value: -1, change.target.value: 1} if change.source != change.target else {}
    dynamo.add_counter(tx, change.project_id, change.task_id, deltas, change.metrics)
    if change.audited:
        audit.record(
            tx,
            change.actor,
            change.action,
            "task",
            change.task_id,
            change.project_id,
            before={"status": change.source.value},
            after={"status": change.target.value, **(change.audit_after or {})},
        )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if index in exc.failed:
            raise Lost(f"task {change.task_id} is no longer {change.source.value}") from exc
        raise


def apply_as_holder(item: Any, actor: Actor, action: str, gsi1sk: str, **changes: Any) -> None:
    """A lease holder's change of a task that keeps its status (heartbeat, release, skip of a
    labelling, review or gold lease): conditional on ``actor`` holding the lease, else 409
    ``lease_not_held``. ``changes`` are further :class:`Transition` fields."""
    status, task_id = TaskStatus(item.status), str(item.task_id)
    change = Transition(
        str(item.project_id),
        task_id,
        status,
        status,
        gsi1sk,
        actor,
        action,
        condition="#owner = :me",
        names={"#owner": "lease_owner"},
        values={":me": actor.user_id},
        **changes,
    )
    try:
        apply(change)
    except Lost:
        raise LeaseNotHeld(f"you no longer hold the lease on task {task_id}") from None


# The outbox's attributes on a task item: the handoff and its place in GSI4.
HANDOFF = ("handoff", keys.GSI4PK, keys.GSI4SK)


def handoff(project_id: str, task_id: str, pending: Handoff, now: int) -> dict[str, Any]:
    """The attributes that put ``pending`` in the task's outbox (a :class:`Transition`'s ``set``),
    overdue :data:`~serval.domain.handoffs.GRACE_S` after ``now``."""
    return {
        "handoff": pending.to_json(),
        keys.GSI4PK: keys.repair_gsi4pk(project_id),
        keys.GSI4SK: keys.repair_gsi4sk(now + GRACE_S, task_id),
    }


def _task_key(project_id: str, task_id: str) -> dict[str, Any]:
    return {keys.PK: {"S": keys.project_pk(project_id)}, keys.SK: {"S": keys.task_sk(task_id)}}


def _update_if(request: dict[str, Any]) -> bool:
    """One UpdateItem of a task item; False when its condition failed."""
    from botocore.exceptions import ClientError

    try:
        clients.dynamodb().update_item(TableName=settings().TASKS_TABLE, **request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False
    return True


def clear_token(project_id: str, task_id: str, attribute: str, token: str) -> bool:
    """Remove a used task token from the item, with the handoff it delivered, unless another
    token has replaced it meanwhile (then a handoff stays for the new token). False if so."""
    removes = ", ".join(f"#h{i}" for i in range(len(HANDOFF)))
    return _update_if(
        {
            "Key": _task_key(project_id, task_id),
            "UpdateExpression": f"REMOVE #t, {removes}",
            "ConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": attribute} | {f"#h{i}": n for i, n in enumerate(HANDOFF)},
            "ExpressionAttributeValues": {":t": {"S": token}},
        }
    )


def forget_token(project_id: str, task_id: str, attribute: str, token: str) -> bool:
    """:func:`clear_token` after a delivery, where a failure costs nothing: the execution's next
    step removes the used token and the handoff anyway. False when it did not happen."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return clear_token(project_id, task_id, attribute, token)
    except (ClientError, BotoCoreError):
        return False


def replace_token(project_id: str, task_id: str, attribute: str, old: str, new: str, execution: str) -> bool:
    """Give the step the task waits in the token of another execution (a re-created one), in
    place of ``old``; False when the task no longer holds ``old``."""
    return _update_if(
        {
            "Key": _task_key(project_id, task_id),
            "UpdateExpression": "SET #t = :new, #e = :execution",
            "ConditionExpression": "#t = :old",
            "ExpressionAttributeNames": {"#t": attribute, "#e": "execution_name"},
            "ExpressionAttributeValues": {
                ":old": {"S": old},
                ":new": {"S": new},
                ":execution": {"S": execution},
            },
        }
    )


def settle_handoff(
    project_id: str,
    task_id: str,
    entry: str,
    actor: Actor,
    action: str,
    after: dict[str, Any],
    *,
    token: tuple[str, str] | None = None,
    due: int | None = None,
) -> bool:
    """A repair of the task's outbox entry (``entry``: its GSI4SK, as read), audited in the same
    transaction. With ``due`` the entry is overdue again then (the reconciler looks again);
    otherwise it goes, and with it ``token`` (attribute, value), the step token it delivered.
    False when the entry changed meanwhile: nothing is written."""
    names = {"#sk": keys.GSI4SK}
    values: dict[str, Any] = {":entry": entry}
    condition = "#sk = :entry"
    if due is not None:
        expression = "SET #sk = :due"
        values[":due"] = keys.repair_gsi4sk(due, task_id)
    else:
        names |= {"#h": "handoff", "#pk": keys.GSI4PK}
        expression = "REMOVE #h, #pk, #sk"
        if token is not None:
            names["#t"], values[":t"] = token
            expression += ", #t"
            condition += " AND #t = :t"
    tx = dynamo.Tx().update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.task_sk(task_id)),
        expression,
        names=names,
        values=values,
        condition=condition,
    )
    audit.record(tx, actor, action, "task", task_id, project_id, after=after)
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True


@dataclass(frozen=True)
class Waiting:
    """A task whose execution waits for a human: in ``step``, under ``execution``'s token."""

    task_id: str
    execution: str
    step: WaitStep


# The statuses a waiting task of the workflow has; gold tasks (whose execution is paused in
# Label) wait apart, in their own partition.
WAITING = (TaskStatus.QUEUED, TaskStatus.LEASED, TaskStatus.IN_REVIEW)


def waiting(project_id: str) -> list[Waiting]:
    """The project's tasks whose execution waits in Label or Review: Queries of their status
    partitions and of the gold partition, which hold only started tasks (at most the project's
    window of them)."""
    found: list[Waiting] = []
    partitions = [keys.status_gsi1pk(project_id, s.value) for s in WAITING] + [keys.gold_gsi1pk(project_id)]
    for partition in partitions:
        kwargs: dict[str, Any] = {
            "TableName": settings().TASKS_TABLE,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.GSI1PK, "#s": "status"},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ProjectionExpression": "task_id, execution_name, #s, label_token, review_token, handoff",
        }
        for page in _pages(kwargs):
            for item in page["Items"]:
                pending = Handoff.from_stored(item["handoff"]["S"]) if "handoff" in item else None
                step = waiting_step(
                    TaskStatus(item["status"]["S"]),
                    "label_token" in item,
                    "review_token" in item,
                    pending.step if pending else None,
                )
                if step is not None:
                    task_id = item["task_id"]["S"]
                    name = item.get("execution_name", {}).get("S")
                    found.append(Waiting(task_id, current_execution(task_id, name), step))
    return found


def _overdue_query(project_id: str, now: int) -> dict[str, Any]:
    return {
        "TableName": settings().TASKS_TABLE,
        "IndexName": keys.GSI4,
        "KeyConditionExpression": "#pk = :pk AND #sk < :below",
        "ExpressionAttributeNames": {"#pk": keys.GSI4PK, "#sk": keys.GSI4SK},
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.repair_gsi4pk(project_id)},
            ":below": {"S": keys.repair_gsi4sk_below(now)},
        },
    }


def _pages(kwargs: dict[str, Any]) -> Iterator[Any]:
    while True:
        response = clients.dynamodb().query(**kwargs)
        yield response
        start = response.get("LastEvaluatedKey")
        if not start:
            return
        kwargs = kwargs | {"ExclusiveStartKey": start}


def overdue_handoffs(project_id: str, now: int) -> list[str]:
    """The tasks of the project whose handoff was due before ``now`` (Queries of its GSI4 partition)."""
    kwargs = _overdue_query(project_id, now) | {"ProjectionExpression": "task_id"}
    return [item["task_id"]["S"] for page in _pages(kwargs) for item in page["Items"]]


def count_overdue_handoffs(project_id: str, now: int) -> int:
    """How many of the project's handoffs were due before ``now``."""
    return sum(int(page["Count"]) for page in _pages(_overdue_query(project_id, now) | {"Select": "COUNT"}))


def set_assignee(
    project_id: str,
    task_id: str,
    user_id: str | None,
    statuses: Sequence[TaskStatus],
    actor: Actor,
    *,
    audited: bool = True,
    held_by: str | None = None,
) -> None:
    """Reserve a task for ``user_id`` (None: remove the reservation) while it is in one of
    ``statuses`` (and, given ``held_by``, while it is reserved for that user); audited by
    ``actor`` unless ``audited`` is False (bulk jobs)."""
    tx = dynamo.Tx()
    placeholders = {f":st{i}": s.value for i, s in enumerate(statuses)}
    names = {"#status": "status"} | {f"#r{i}": name for i, name in enumerate(RESERVATION)}
    values: dict[str, Any] = {":now": utcnow(), ":one": 1} | placeholders
    if user_id is not None:
        sets = reservation(project_id, task_id, user_id)
        values |= {f":r{i}": sets[name] for i, name in enumerate(RESERVATION)}
        change = "SET " + ", ".join(f"#r{i} = :r{i}" for i in range(len(RESERVATION))) + ", "
    else:
        change = "REMOVE " + ", ".join(f"#r{i}" for i in range(len(RESERVATION))) + " SET "
    condition = f"#status IN ({', '.join(placeholders)})"
    if held_by is not None:
        condition += " AND #r0 = :held_by"
        values[":held_by"] = held_by
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.task_sk(task_id)),
        change + "updated_at = :now ADD version :one",
        names=names,
        values=values,
        condition=condition,
    )
    if audited:
        action = "task.assign" if user_id is not None else "task.unassign"
        after = {"assignee": user_id} | ({"released": held_by} if held_by is not None else {})
        audit.record(tx, actor, action, "task", task_id, project_id, after=after)
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Lost(f"task {task_id} cannot be assigned now") from exc


def reserved_for(user_id: str, project_id: str | None = None) -> Iterator[tuple[str, str]]:
    """``(project id, task id)`` of every task reserved for ``user_id`` (in one project, or in
    all): Queries of GSI3's partition of the user, never a scan."""
    condition = "#pk = :pk"
    names = {"#pk": keys.GSI3PK, "#p": "project_id", "#t": "task_id"}
    values: dict[str, Any] = {":pk": {"S": keys.assignee_gsi3pk(user_id)}}
    if project_id:
        condition += " AND begins_with(#sk, :prefix)"
        names["#sk"] = keys.GSI3SK
        values[":prefix"] = {"S": keys.assignee_gsi3sk_prefix(project_id)}
    kwargs: dict[str, Any] = {
        "TableName": settings().TASKS_TABLE,
        "IndexName": keys.GSI3,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ProjectionExpression": "#p, #t",
    }
    while True:
        response = clients.dynamodb().query(**kwargs)
        for item in response["Items"]:
            yield item["project_id"]["S"], item["task_id"]["S"]
        start = response.get("LastEvaluatedKey")
        if not start:
            return
        kwargs["ExclusiveStartKey"] = start
