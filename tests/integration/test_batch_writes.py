"""Batch writes under throttling: DynamoDB may process part of a BatchWriteItem and hand the
rest back as ``UnprocessedItems``. Every batch write goes through ``dynamo.batch_write``, which
sends the rest again; a delete of a task with more annotations than one transaction holds
leaves none behind (moto in-process; the throttle is injected on the client's events)."""

from __future__ import annotations

from typing import Any

from serval.adapters import clients, dynamo, mapping
from serval.domain.actor import Actor
from serval.domain.models import Annotation, utcnow
from serval.domain.results import ClassificationResult
from serval.logic import tasks as task_logic
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import project, queued

ANNOTATIONS = 160  # more than one transaction's 100 actions: the rest are batch-deleted


class HalfThrottled:
    """Each BatchWriteItem reaches moto with only the first half of its requests; the other
    half comes back as ``UnprocessedItems``, as a throttled table answers."""

    def __init__(self) -> None:
        self.calls = 0
        self.withheld = 0

    def trim(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        held: dict[str, list[dict[str, Any]]] = {}
        for table, requests in params["RequestItems"].items():
            keep = max(1, len(requests) // 2)
            params["RequestItems"][table], held[table] = requests[:keep], requests[keep:]
            self.withheld += len(requests) - keep
        context["withheld"] = {t: r for t, r in held.items() if r}

    def answer(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        withheld = context.get("withheld") or {}
        if withheld:
            parsed["UnprocessedItems"] = {**parsed.get("UnprocessedItems", {}), **withheld}


def _annotations(project_id: str, task_id: str, n: int) -> None:
    at = utcnow()
    result = ClassificationResult.model_validate(
        {"control": "sentiment", "type": "classification", "labels": ["pos"]}
    )
    m = dynamo.tasks()
    dynamo.batch_write(
        [
            {
                "PutRequest": {
                    "Item": m.AnnotationItem(
                        **mapping.annotation_to_attrs(
                            Annotation(
                                annotation_id=f"a-{i:04d}",
                                task_id=task_id,
                                project_id=project_id,
                                author="someone",
                                results=[result],
                                lead_time_s=1.0,
                                label_config_version=1,
                                created_at=at,
                            )
                        )
                    ).serialize()
                }
            }
            for i in range(n)
        ]
    )


def _left(project_id: str, task_id: str) -> int:
    m = dynamo.tasks()
    return len(list(m.Item.query(f"PROJECT#{project_id}", m.Item.SK.startswith(f"ANNOTATION#{task_id}#"))))


def test_a_throttled_batch_delete_leaves_no_annotation_behind(aws: Aws, admin: Actor) -> None:
    # Given a task with 160 annotations
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    _annotations(project_id, task_id, ANNOTATIONS)
    assert _left(project_id, task_id) == ANNOTATIONS

    # When it is deleted while every BatchWriteItem is half processed
    throttle = HalfThrottled()
    events = clients.dynamodb().meta.events
    events.register("provide-client-params.dynamodb.BatchWriteItem", throttle.trim)
    events.register("after-call.dynamodb.BatchWriteItem", throttle.answer)
    try:
        task_logic.delete(project_id, task_id, admin)
    finally:
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", throttle.trim)
        events.unregister("after-call.dynamodb.BatchWriteItem", throttle.answer)

    # Then the throttle held some back, the rest were sent again, and no annotation is left
    assert throttle.withheld > 0 and throttle.calls > 3
    assert _left(project_id, task_id) == 0


def test_a_throttled_batch_put_writes_every_item_once(aws: Aws, admin: Actor) -> None:
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    throttle = HalfThrottled()
    events = clients.dynamodb().meta.events
    events.register("provide-client-params.dynamodb.BatchWriteItem", throttle.trim)
    events.register("after-call.dynamodb.BatchWriteItem", throttle.answer)
    try:
        _annotations(project_id, task_id, 60)
    finally:
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", throttle.trim)
        events.unregister("after-call.dynamodb.BatchWriteItem", throttle.answer)
    assert throttle.withheld > 0
    assert _left(project_id, task_id) == 60
