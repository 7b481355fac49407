"""Task items and their tag links: create (batched or conditional), read, list, patch, delete."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serval import keys
from serval.adapters import audit, clients, dynamo, mapping, window
from serval.domain import limits
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus, check_transition
from serval.domain.media import MediaType
from serval.domain.models import Task, TaskPatch, utcnow
from serval.errors import Conflict, ItemRefused, ItemTooLarge, NotFound, ValidationFailed
from serval.settings import settings

BATCH_GET_LIMIT = 100
MAX_FILTER_PAGES = 10  # a filtered listing reads at most this many pages before returning a cursor


def _task_item(task: Task) -> Any:
    return dynamo.tasks().TaskItem(**mapping.task_to_attrs(task))


def _tag_items(task: Task) -> list[Any]:
    m = dynamo.tasks()
    pk = keys.project_pk(task.project_id)
    return [
        m.TagLinkItem(PK=pk, SK=keys.tag_sk(tag, task.task_id), task_id=task.task_id, tag=tag)
        for tag in task.tags
    ]


def get_item(project_id: str, task_id: str) -> Any:
    m = dynamo.tasks()
    try:
        return m.TaskItem.get(keys.project_pk(project_id), keys.task_sk(task_id))
    except m.TaskItem.DoesNotExist:
        raise NotFound(f"task {task_id} not found", details={"task_id": task_id}) from None


def get(project_id: str, task_id: str) -> Task:
    return mapping.task_from_item(get_item(project_id, task_id))


# ---- writes for ingestion ------------------------------------------------------------------


def check_size(task: Task) -> int:
    """The task item's stored size; raises ItemTooLarge over ``limits.MAX_TASK_BYTES``."""
    return dynamo.check_item(_task_item(task).serialize(), "task", limits.MAX_TASK_BYTES)


@dataclass(frozen=True)
class Refused:
    """A task DynamoDB would not take (nothing of it counted), and why."""

    task: Task
    reason: str


@dataclass
class BatchResult:
    requests: int = 0
    refused: list[Refused] = field(default_factory=list)

    @property
    def refused_ids(self) -> set[str]:
        return {r.task.task_id for r in self.refused}


def _put_requests(task: Task) -> list[dict[str, Any]]:
    """The task's item first, then its tag links."""
    return [{"PutRequest": {"Item": item.serialize()}} for item in (_task_item(task), *_tag_items(task))]


def batch_put(tasks: Sequence[Task]) -> BatchResult:
    """BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff.

    Unconditional: only for tasks whose ids are known to be new (see logic.ingest). A task
    whose item does not fit DynamoDB's limit is refused without a request; a chunk DynamoDB
    refuses (ValidationException: nothing of it is written) is written again task by task,
    so only the tasks it refuses are refused.
    """
    result = BatchResult()
    owned: list[tuple[int, dict[str, Any]]] = []  # (index in ``tasks``, request)
    for index, task in enumerate(tasks):
        requests = _put_requests(task)
        try:
            dynamo.check_item(requests[0]["PutRequest"]["Item"], "task")
        except ItemTooLarge as exc:
            result.refused.append(Refused(task, exc.message))
            continue
        owned += [(index, r) for r in requests]
    for chunk in dynamo.chunks(owned, dynamo.BATCH_WRITE_LIMIT):
        try:
            result.requests += dynamo.batch_write([r for _, r in chunk])
        except ItemRefused:
            for index in dict.fromkeys(i for i, _ in chunk):
                try:
                    result.requests += dynamo.batch_write(_put_requests(tasks[index]))
                except ItemRefused as exc:
                    result.refused.append(Refused(tasks[index], _reason(exc)))
    return result


def _reason(exc: ItemRefused) -> str:
    detail = exc.details.get("reason") if isinstance(exc.details, dict) else None
    return f"{exc.message}: {detail}" if detail else exc.message


def existing_ids(project_id: str, task_ids: Sequence[str]) -> set[str]:
    """Which of these task ids exist already: BatchGetItem, keys only."""
    table = settings().TASKS_TABLE
    found: set[str] = set()
    pk = keys.project_pk(project_id)
    for chunk in dynamo.chunks(list(dict.fromkeys(task_ids)), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{keys.PK: {"S": pk}, keys.SK: {"S": keys.task_sk(t)}} for t in chunk],
                "ProjectionExpression": "#sk",
                "ExpressionAttributeNames": {"#sk": keys.SK},
            }
        }
        for attempt in range(12):
            response = clients.dynamodb().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found.add(item[keys.SK]["S"].removeprefix("TASK#"))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
    return found


@dataclass
class ConditionalResult:
    created: list[str]
    duplicates: list[str]
    requests: int
    refused: list[Refused] = field(default_factory=list)


def put_new(project_id: str, tasks: Sequence[Task], count_shard_seed: str) -> ConditionalResult:
    """Create tasks that may already exist (external ids, media objects), exactly once each.

    Each transaction holds conditional puts (task + tag links) and the counter update for
    the tasks it creates. A failed condition names the duplicates; they are dropped and
    the rest retried, so counters never drift from the items. A task DynamoDB refuses (its
    item over the limit, or a transaction of it alone refused) is reported in ``refused``
    and counted nowhere; when a transaction of several is refused, each is tried alone.
    """
    result = ConditionalResult([], [], 0)
    unique: dict[str, Task] = {}
    for task in tasks:  # one transaction may not touch an item twice: a repeat is a duplicate
        if task.task_id in unique:
            result.duplicates.append(task.task_id)
            continue
        try:
            dynamo.check_item(_task_item(task).serialize(), "task")
        except ItemTooLarge as exc:
            result.refused.append(Refused(task, exc.message))
            continue
        unique[task.task_id] = task
    for group in _transaction_groups(list(unique.values())):
        try:
            _put_group(project_id, group, count_shard_seed, result)
        except ItemRefused as exc:
            if len(group) == 1:
                result.refused.append(Refused(group[0], _reason(exc)))
                continue
            found = set(result.duplicates)  # before the refusal, the group's retries found these
            for task in (t for t in group if t.task_id not in found):
                try:
                    _put_group(project_id, [task], count_shard_seed, result)
                except ItemRefused as alone:
                    result.refused.append(Refused(task, _reason(alone)))
    return result


def _put_group(
    project_id: str, group: Sequence[Task], count_shard_seed: str, result: ConditionalResult
) -> None:
    """One transaction of new tasks (again without the duplicates it finds) and their counter."""
    remaining = list(group)
    while remaining:
        tx = dynamo.Tx()
        owners: list[int] = []  # action index -> position in ``remaining``
        for pos, task in enumerate(remaining):
            tx.put(_task_item(task), condition="attribute_not_exists(PK)", old_on_failure=True)
            owners.append(pos)
            for link in _tag_items(task):
                tx.put(link)
                owners.append(pos)
        counts: dict[str, int] = {}
        for task in remaining:
            counts[task.status.value] = counts.get(task.status.value, 0) + 1
        dynamo.add_counter(tx, project_id, count_shard_seed, counts)
        result.requests += 1
        try:
            tx.commit()
        except dynamo.TransactionCancelled as exc:
            standing = {owners[i]: exc.items[i] for i in exc.failed if i < len(owners)}
            dupes = set(standing)
            for p in sorted(dupes):
                # the same task from the same place of the same import: an earlier attempt of this
                # import made it (and counted it), then stopped before recording its progress
                own = _same_origin(remaining[p], standing[p])
                (result.created if own else result.duplicates).append(remaining[p].task_id)
            remaining = [t for p, t in enumerate(remaining) if p not in dupes]
            continue
        result.created += [t.task_id for t in remaining]
        remaining = []


def _same_origin(task: Task, existing: dict[str, Any] | None) -> bool:
    """Whether ``existing`` (the stored item, as DynamoDB returned it) is ``task`` itself: made
    by the same import from the same line or position."""
    if existing is None or task.import_id is None:
        return False
    mine = _task_item(task).serialize()
    return all(existing.get(name) == mine.get(name) for name in ("import_id", "source"))


def _transaction_groups(tasks: Sequence[Task]) -> Iterable[list[Task]]:
    """Split tasks so each transaction holds at most 99 puts (one action left for the counter)
    and stays inside DynamoDB's 4 MB, less a reserve for the counter and an audit record."""
    budget = limits.MAX_TRANSACTION_BYTES - limits.TRANSACTION_RESERVE_BYTES
    group: list[Task] = []
    actions = size = 0
    for task in tasks:
        need = 1 + len(task.tags)
        weight = sum(dynamo.item_size(i.serialize()) for i in (_task_item(task), *_tag_items(task)))
        if group and (actions + need > dynamo.MAX_TRANSACTION_ACTIONS - 1 or size + weight > budget):
            yield group
            group, actions, size = [], 0, 0
        group.append(task)
        actions += need
        size += weight
    if group:
        yield group


# ---- listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilter:
    status: TaskStatus | None = None
    tag: str | None = None
    has_prediction: bool | None = None
    media_type: MediaType | None = None
    assignee: str | None = None
    descending: bool = False


def _filter_condition(m: Any, f: TaskFilter, include_status: bool) -> Any:
    condition = None
    parts = []
    if f.has_prediction is not None:
        parts.append(m.TaskItem.has_prediction == f.has_prediction)
    if f.media_type is not None:
        parts.append(m.TaskItem.media_type == f.media_type.value)
    if include_status and f.status is not None:
        parts.append(m.TaskItem.status == f.status.value)
    for part in parts:
        condition = part if condition is None else condition & part
    return condition


def _matches(task: Task, f: TaskFilter) -> bool:
    return (
        (f.status is None or task.status == f.status)
        and (f.tag is None or f.tag in (task.tags or []))
        and (f.has_prediction is None or bool(task.predictions) == f.has_prediction)
        and (f.media_type is None or task.media_type == f.media_type)
    )


def list_page(
    project_id: str, f: TaskFilter, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """One page of a project's tasks. Queries one partition; never scans."""
    m = dynamo.tasks()
    if f.assignee is not None:
        return _list_by_assignee(project_id, f, limit, cursor)
    if f.tag is not None:
        return _list_by_tag(project_id, f, limit, cursor)
    if f.status is not None:
        index, partition_attr, partition = (
            m.Item.by_status,
            keys.GSI1PK,
            keys.status_gsi1pk(project_id, f.status),
        )
    else:
        index, partition_attr, partition = m.Item.by_time, keys.GSI2PK, keys.tasks_gsi2pk(project_id)
    if f.status is not None and f.status in GOLD_SHOWS:
        gold_start = _gold_cursor(project_id, cursor)
        if gold_start is not None:  # the status partition is done: its gold tasks follow
            return _list_gold(project_id, f, limit, gold_start)
    start = dynamo.decode_cursor(cursor, partition_attr, partition)
    condition = _filter_condition(m, f, include_status=False)
    found: list[Task] = []
    last: Any = None
    for _ in range(MAX_FILTER_PAGES):
        results = index.query(
            partition,
            filter_condition=condition,
            scan_index_forward=not f.descending,
            limit=limit - len(found),
            page_size=limit,
            last_evaluated_key=start,
        )
        page = list(results)
        found += [mapping.task_from_item(i) for i in page]
        start = results.last_evaluated_key
        last = page[-1] if page else last
        if not start or len(found) >= limit:
            break
    if start is None and f.status is not None and f.status in GOLD_SHOWS:
        if len(found) < limit:
            more, cursor_after = _list_gold(project_id, f, limit - len(found), None)
            return found + more, cursor_after
        start = _index_key(last)  # a full page that ended the partition: the gold tasks come next
    return found, dynamo.encode_cursor(start)


# Gold tasks sit in their own GSI1 partition (out of the queue) but show the statuses a queued
# task shows; a listing by one of these statuses continues into that partition, so gold tasks
# are listed where annotators expect them.
GOLD_SHOWS = (TaskStatus.NEW, TaskStatus.QUEUED, TaskStatus.LEASED)


def _index_key(item: Any) -> dict[str, Any]:
    """The GSI1 start key just after ``item`` (as DynamoDB's LastEvaluatedKey would name it)."""
    return {name: {"S": str(getattr(item, name))} for name in (keys.PK, keys.SK, keys.GSI1PK, keys.GSI1SK)}


def _gold_cursor(project_id: str, cursor: str | None) -> dict[str, Any] | None:
    """The start key of a cursor made in the project's gold partition (None: any other cursor)."""
    if not cursor:
        return None
    try:
        return dynamo.decode_cursor(cursor, keys.GSI1PK, keys.gold_gsi1pk(project_id))
    except ValidationFailed:
        return None


def _list_gold(
    project_id: str, f: TaskFilter, limit: int, start: dict[str, Any] | None
) -> tuple[list[Task], str | None]:
    """Gold tasks that show ``f.status`` (leased: any with a lease; else that status and no lease)."""
    m = dynamo.tasks()
    shows = (
        m.TaskItem.lease_owner.exists()
        if f.status is TaskStatus.LEASED
        else (m.TaskItem.status == getattr(f.status, "value", "")) & m.TaskItem.lease_owner.does_not_exist()
    )
    other = _filter_condition(m, f, include_status=False)
    condition = shows if other is None else shows & other
    found: list[Task] = []
    for _ in range(MAX_FILTER_PAGES):
        if limit <= len(found):
            break
        results = m.Item.by_status.query(
            keys.gold_gsi1pk(project_id),
            filter_condition=condition,
            scan_index_forward=not f.descending,
            limit=limit - len(found),
            page_size=limit,
            last_evaluated_key=start,
        )
        found += [mapping.task_from_item(i) for i in results]
        start = results.last_evaluated_key
        if not start:
            break
    return found, dynamo.encode_cursor(start)


def _list_by_tag(
    project_id: str, f: TaskFilter, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    start = dynamo.decode_cursor(cursor, keys.PK, pk, keys.tag_sk_prefix(f.tag or ""))
    links = m.Item.query(
        pk,
        m.Item.SK.startswith(keys.tag_sk_prefix(f.tag or "")),
        scan_index_forward=not f.descending,
        limit=limit,
        page_size=limit,
        last_evaluated_key=start,
    )
    task_ids = [str(getattr(link, "task_id", "")) for link in links]
    by_id = {}
    for item in m.TaskItem.batch_get([(pk, keys.task_sk(t)) for t in task_ids]):
        by_id[item.task_id] = mapping.task_from_item(item)
    ordered = [by_id[t] for t in task_ids if t in by_id and _matches(by_id[t], f)]
    return ordered, dynamo.encode_cursor(links.last_evaluated_key)


def _list_by_assignee(
    project_id: str, f: TaskFilter, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """The tasks reserved for ``f.assignee`` in the project: one Query of the member's GSI3
    partition (the project's prefix), then the tasks by key; the other filters apply to them."""
    m = dynamo.tasks()
    assignee = f.assignee or ""
    partition, prefix = keys.assignee_gsi3pk(assignee), keys.assignee_gsi3sk_prefix(project_id)
    start = dynamo.decode_cursor(cursor, keys.GSI3PK, partition, prefix)
    kwargs: dict[str, Any] = {
        "TableName": m.table_name,
        "IndexName": keys.GSI3,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": keys.GSI3PK, "#sk": keys.GSI3SK},
        "ExpressionAttributeValues": {":pk": {"S": partition}, ":prefix": {"S": prefix}},
        "ScanIndexForward": not f.descending,
        "Limit": limit,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    response = clients.dynamodb().query(**kwargs)
    task_ids = [item[keys.SK]["S"].removeprefix(keys.task_sk("")) for item in response["Items"]]
    pk = keys.project_pk(project_id)
    by_id = {
        item.task_id: mapping.task_from_item(item)
        for item in m.TaskItem.batch_get([(pk, keys.task_sk(t)) for t in task_ids])
    }
    ordered = [by_id[t] for t in task_ids if t in by_id and _matches(by_id[t], f)]
    return ordered, dynamo.encode_cursor(response.get("LastEvaluatedKey"))


# ---- single-task changes -------------------------------------------------------------------


def patch(project_id: str, task_id: str, change: TaskPatch, actor: Actor) -> Task:
    item = get_item(project_id, task_id)
    before = mapping.task_from_item(item)
    updates: dict[str, Any] = {}
    if change.tags is not None:
        updates["tags"] = list(dict.fromkeys(change.tags))
    if change.priority is not None:
        updates["priority"] = change.priority
    if change.metadata is not None:
        updates["metadata"] = change.metadata
    after = before.model_copy(update=updates | {"updated_at": utcnow()})
    pk = keys.project_pk(project_id)
    tx = dynamo.Tx()
    # only the changed attributes: the item also holds the queue's and the workflow's (tokens, lease)
    wire = dynamo.tasks().TaskItem(**mapping.task_to_attrs(after)).serialize()  # typed by the model
    changed = [*updates, "updated_at"]
    names = {f"#u{i}": name for i, name in enumerate(changed)} | {"#v": "version"}
    sets = [f"#u{i} = :u{i}" for i, name in enumerate(changed) if name in wire]
    removes = [f"#u{i}" for i, name in enumerate(changed) if name not in wire]
    values: dict[str, Any] = {f":u{i}": wire[name] for i, name in enumerate(changed) if name in wire}
    values |= {":v": int(item.version), ":one": 1}
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(pk, keys.task_sk(task_id)),
        "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "") + " ADD #v :one",
        names=names,
        values=values,
        condition="attribute_exists(PK) AND #v = :v",
    )
    for tag in set(before.tags) - set(after.tags):
        tx.delete(settings().TASKS_TABLE, dynamo.item_key(pk, keys.tag_sk(tag, task_id)))
    for link in _tag_items(
        after.model_copy(update={"tags": [t for t in after.tags if t not in before.tags]})
    ):
        tx.put(link)
    audit.record(
        tx,
        actor,
        "task.update",
        "task",
        task_id,
        project_id,
        before=before.model_dump(mode="json", include=set(updates)),
        after=after.model_dump(mode="json", include=set(updates)),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("the task changed meanwhile; reload and retry") from exc
    return after


DELETE_ATTEMPTS = 3


@dataclass(frozen=True)
class Deleted:
    """What a deleted task leaves to end: its execution, if open, and the step tokens it held."""

    open_execution: bool
    waiting_tokens: tuple[str, ...]


def delete(project_id: str, task_id: str, actor: Actor, *, audited: bool = True) -> Deleted:
    """Delete a task with its tag links and annotations, fix the counter, audit it: one transaction.

    ``audited=False`` (bulk jobs, which write one record for the whole job) skips the record.
    A task whose workflow moves it meanwhile (its version changes), or that gains an annotation
    meanwhile (its annotation count changes), is read again and the delete retried; a task whose execution is open gives its active-window slot back.

    Annotations that do not fit the transaction are removed right after; they are only
    reachable through their task, so nothing dangling is ever visible.
    """
    attempts = 0
    while True:
        try:
            return _delete_once(project_id, task_id, actor, audited)
        except dynamo.TransactionCancelled as exc:
            attempts += 1
            if attempts == DELETE_ATTEMPTS:
                raise Conflict("the task keeps changing; reload and retry") from exc


def _delete_once(project_id: str, task_id: str, actor: Actor, audited: bool) -> Deleted:
    item = get_item(project_id, task_id)
    task = mapping.task_from_item(item)
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    table = settings().TASKS_TABLE
    annotation_keys = [
        a.SK
        for a in m.Item.query(
            pk, m.Item.SK.startswith(keys.annotation_sk_prefix(task_id)), attributes_to_get=["PK", "SK"]
        )
    ]
    tx = dynamo.Tx()
    # the annotation count read before the Query: an annotation committed since then (it adds to
    # the count in its own transaction) fails the delete, which reads again and takes it along
    counted = int(item.annotation_count or 0)
    tx.delete(
        table,
        dynamo.item_key(pk, keys.task_sk(task_id)),
        condition="#v = :v AND " + ("#n = :n" if counted else "(attribute_not_exists(#n) OR #n = :n)"),
        names={"#v": "version", "#n": "annotation_count"},
        values={":v": int(item.version), ":n": counted},
    )
    for tag in task.tags:
        tx.delete(table, dynamo.item_key(pk, keys.tag_sk(tag, task_id)))
    dynamo.add_counter(tx, project_id, task_id, {task.status.value: -1})
    deleted = Deleted(
        open_execution=bool(item.execution_started_at and not item.execution_ended_at),
        waiting_tokens=tuple(str(t) for t in (item.label_token, item.review_token) if t),
    )
    if deleted.open_execution:
        window.give_back(tx, project_id)  # the open execution's slot in the project's active window
    room = dynamo.MAX_TRANSACTION_ACTIONS - len(tx) - 1
    in_tx, later = annotation_keys[:room], annotation_keys[room:]
    for sk in in_tx:
        tx.delete(table, dynamo.item_key(pk, sk))
    if audited:
        audit.record(
            tx, actor, "task.delete", "task", task_id, project_id, before=task.model_dump(mode="json")
        )
    tx.commit()
    dynamo.batch_write(
        [{"DeleteRequest": {"Key": {keys.PK: {"S": pk}, keys.SK: {"S": sk}}}} for sk in later], table=table
    )
    return deleted


# ---- unaudited changes for bulk jobs (which audit once per job) ------------------------------


def get_items(project_id: str, task_ids: Sequence[str]) -> dict[str, Any]:
    """Task items by id (BatchGetItem, 100 per call); missing ids are absent."""
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    wanted = list(dict.fromkeys(task_ids))
    return {item.task_id: item for item in m.TaskItem.batch_get([(pk, keys.task_sk(t)) for t in wanted])}


def set_tags_priority(
    item: Any,
    tags: list[str] | None = None,
    priority: int | None = None,
    deferred_links: list[dict[str, Any]] | None = None,
) -> bool:
    """Set a task's tags and/or priority with one version-checked UpdateItem, then its tag links.

    The links are idempotent puts and deletes written after the item, so calling this again
    with the same values repairs links a crash left behind. False: the task changed meanwhile
    (or is gone); reload it and retry. Given ``deferred_links``, the link writes are appended
    there for the caller to pass to :func:`dynamo.batch_write` (after every item of a batch).
    """
    pk = keys.project_pk(item.project_id)
    before = list(item.tags or [])
    sets = ["updated_at = :at"]
    values: dict[str, Any] = {":at": utcnow(), ":v": int(item.version), ":one": 1}
    removes = []
    if tags is not None:
        tags = list(dict.fromkeys(tags))
        if tags:
            sets.append("tags = :tags")
            values[":tags"] = tags
        else:
            removes.append("tags")
    if priority is not None:
        sets.append("priority = :p")
        values[":p"] = priority
    try:
        clients.dynamodb().update_item(
            TableName=settings().TASKS_TABLE,
            Key={keys.PK: {"S": pk}, keys.SK: {"S": keys.task_sk(item.task_id)}},
            UpdateExpression="SET "
            + ", ".join(sets)
            + (" REMOVE " + ", ".join(removes) if removes else "")
            + " ADD #v :one",
            ConditionExpression="attribute_exists(PK) AND #v = :v",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={k: dynamo.serialize(v) for k, v in values.items()},
        )
    except clients.dynamodb().exceptions.ConditionalCheckFailedException:
        return False
    if tags is not None:
        m = dynamo.tasks()
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": {keys.PK: {"S": pk}, keys.SK: {"S": keys.tag_sk(t, item.task_id)}}}}
            for t in set(before) - set(tags)
        ]
        requests += [
            {
                "PutRequest": {
                    "Item": m.TagLinkItem(
                        PK=pk, SK=keys.tag_sk(t, item.task_id), task_id=item.task_id, tag=t
                    ).serialize()
                }
            }
            for t in tags
        ]
        if deferred_links is None:
            dynamo.batch_write(requests)
        else:
            deferred_links += requests
    return True


def transition(project_id: str, task_id: str, target: TaskStatus) -> Task:
    """Move a task to ``target`` (checked by the lifecycle), with the per-status counters: one
    transaction, conditional on the status and version read. Unaudited: for bulk jobs.

    Raises NotFound, InvalidTransition, or Conflict when the task changed meanwhile.
    """
    item = get_item(project_id, task_id)
    task = mapping.task_from_item(item)
    check_transition(task.status, target)
    pk = keys.project_pk(project_id)
    index = mapping.task_index_keys(project_id, task_id, target.value, task.created_at)
    at = utcnow()
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(pk, keys.task_sk(task_id)),
        "SET #s = :to, GSI1PK = :g1pk, GSI1SK = :g1sk, updated_at = :at REMOVE queue_key ADD #v :one",
        names={"#s": "status", "#v": "version"},
        values={
            ":to": target.value,
            ":g1pk": index["GSI1PK"],
            ":g1sk": index["GSI1SK"],
            ":at": at,
            ":one": 1,
            ":from": task.status.value,
            ":v": int(item.version),
        },
        condition="#s = :from AND #v = :v",
    )
    dynamo.add_counter(tx, project_id, task_id, {task.status.value: -1, target.value: 1})
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("the task changed meanwhile; reload and retry") from exc
    return task.model_copy(update={"status": target, "updated_at": at})
