"""Annotation items written outside the queue (``POST …/annotations``): created in one
transaction with the task's annotation count and the audit record, on condition that the task
is still open (and, for a lease holder, still theirs).

They count in no activity or quality counter: those count the queue's work (submits, gold
answers, consensus rounds, review decisions), which one caller cannot repeat at will.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serval import keys
from serval.adapters import audit, dynamo, mapping
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Annotation
from serval.errors import NotFound
from serval.settings import settings


class Refused(Exception):
    """The task is gone, closed, or no longer leased by the writer: read it again to say why."""


def create(annotation: Annotation, actor: Actor, closed: Sequence[TaskStatus], holder: str | None) -> None:
    """Store ``annotation`` unless its task is in one of ``closed`` or, with ``holder``, no longer
    leased by ``holder``; raises :class:`Refused`."""
    m = dynamo.tasks()
    pk = keys.project_pk(annotation.project_id)
    shut = {f":closed{i}": s.value for i, s in enumerate(closed)}
    condition = "attribute_exists(PK)" + (f" AND NOT #status IN ({', '.join(shut)})" if shut else "")
    names = {"#status": "status"} if shut else {}
    values: dict[str, Any] = {":one": 1, ":now": annotation.created_at} | shut
    if holder is not None:
        condition += " AND #owner = :holder"
        names["#owner"] = "lease_owner"
        values[":holder"] = holder
    tx = dynamo.Tx()
    tx.put(m.AnnotationItem(**mapping.annotation_to_attrs(annotation)), condition="attribute_not_exists(PK)")
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(pk, keys.task_sk(annotation.task_id)),
        "ADD annotation_count :one SET updated_at = :now",
        names=names,
        values=values,
        condition=condition,
    )
    audit.record(
        tx,
        actor,
        "annotation.create",
        "annotation",
        annotation.annotation_id,
        annotation.project_id,
        after=annotation.model_dump(mode="json"),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Refused(f"task {annotation.task_id} refused the annotation") from exc


def list_for_task(
    project_id: str, task_id: str, limit: int, cursor: str | None, author: str | None = None
) -> tuple[list[Annotation], str | None]:
    """A task's annotations; only ``author``'s when given (filtered in DynamoDB, pages stay valid)."""
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    start = dynamo.decode_cursor(cursor, keys.PK, pk, keys.annotation_sk_prefix(task_id))
    results = m.Item.query(
        pk,
        m.Item.SK.startswith(keys.annotation_sk_prefix(task_id)),
        filter_condition=(m.AnnotationItem.author == author) if author is not None else None,
        limit=limit,
        page_size=limit,
        last_evaluated_key=start,
    )
    items = [mapping.annotation_from_item(i) for i in results]
    return items, dynamo.encode_cursor(results.last_evaluated_key)


def get(project_id: str, task_id: str, annotation_id: str) -> Annotation:
    m = dynamo.tasks()
    item: Any
    try:
        item = m.AnnotationItem.get(keys.project_pk(project_id), keys.annotation_sk(task_id, annotation_id))
    except m.AnnotationItem.DoesNotExist:
        raise NotFound(
            f"annotation {annotation_id} not found", details={"annotation_id": annotation_id}
        ) from None
    return mapping.annotation_from_item(item)


def get_many(project_id: str, task_id: str, annotation_ids: Sequence[str]) -> list[Annotation]:
    """A task's annotations by id (BatchGetItem) in the order asked; missing ids are left out."""
    if not annotation_ids:
        return []
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    wanted = list(dict.fromkeys(annotation_ids))
    found = {
        item.annotation_id: mapping.annotation_from_item(item)
        for item in m.AnnotationItem.batch_get([(pk, keys.annotation_sk(task_id, a)) for a in wanted])
    }
    return [found[a] for a in wanted if a in found]
