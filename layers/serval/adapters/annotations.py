"""Annotation items: created in one transaction with the task's counter, the author's activity
counter and the audit record."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import activity, audit, dynamo, mapping
from serval.domain.actor import Actor
from serval.domain.models import Annotation
from serval.errors import NotFound
from serval.settings import settings


def create(annotation: Annotation, actor: Actor) -> None:
    m = dynamo.tasks()
    pk = keys.project_pk(annotation.project_id)
    tx = dynamo.Tx()
    tx.put(m.AnnotationItem(**mapping.annotation_to_attrs(annotation)), condition="attribute_not_exists(PK)")
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(pk, keys.task_sk(annotation.task_id)),
        "ADD annotation_count :one SET updated_at = :now",
        values={":one": 1, ":now": annotation.created_at},
        condition="attribute_exists(PK)",
    )
    activity.add_annotation(
        tx, annotation.project_id, annotation.author, annotation.created_at, annotation.lead_time_s
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
        raise NotFound(f"task {annotation.task_id} not found") from exc


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
