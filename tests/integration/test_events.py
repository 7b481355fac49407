"""The events function turns tasks-table stream records into domain events on the bus."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from serval.domain.actor import Actor
from serval.domain.events import DomainEvent, validate_payload
from serval.logic import events
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import REGION, Aws

LABELS = {"controls": [{"name": "c", "type": "classification", "classes": [{"name": "a"}]}]}


def _stream_records(aws: Aws) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = aws.ddb.describe_table(TableName=aws.env["TASKS_TABLE"])["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    # as Lambda delivers them: JSON, with epoch seconds for the creation time
    return json.loads(json.dumps(records, default=lambda moment: moment.timestamp()))  # type: ignore[no-any-return]


def _bus_queue(aws: Aws) -> str:
    """A queue fed by an observer rule on the bus that matches every Serval event."""
    url = str(aws.sqs.create_queue(QueueName="bus-observer")["QueueUrl"])
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(
        Name="bus-observer", EventBusName=aws.spec.event_bus_name, EventPattern='{"source": ["serval"]}'
    )
    events.put_targets(
        Rule="bus-observer", EventBusName=aws.spec.event_bus_name, Targets=[{"Id": "q", "Arn": arn}]
    )
    return url


def test_task_and_import_changes_become_events_with_stable_ids(aws: Aws, admin: Actor) -> None:
    # Given the bus and the queue its rule feeds, and a project with two tasks created in bulk
    queue = _bus_queue(aws)
    project = call(
        "POST", "/projects", admin, {"name": "p", "media_types": ["text"], "label_config": LABELS}
    ).body
    call(
        "POST",
        f"/projects/{project['project_id']}/tasks",
        admin,
        [{"data": {"text": "a"}}, {"data": {"text": "b"}}],
    )
    records = _stream_records(aws)
    # When the events function processes the stream batch
    from events.handler import handler

    result = handler({"Records": records}, LambdaContextStub(function_name="serval-local-events"))
    # Then nothing is retried, and the bus carried project.created, the creator's member.added,
    # 2 x task.created and import.completed
    assert result == {"batchItemFailures": []}
    received: list[dict[str, Any]] = []
    while batch := aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]) for m in batch]
        aws.sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    types = sorted(e["detail-type"] for e in received)
    assert types == ["import.completed", "member.added", "project.created", "task.created", "task.created"]
    added = next(e["detail"] for e in received if e["detail-type"] == "member.added")
    assert added["project_id"] == project["project_id"]
    assert added["data"] == {"user_id": admin.user_id, "role": "manager", "added_by": admin.user_id}
    completed = next(e["detail"] for e in received if e["detail-type"] == "import.completed")
    assert completed["data"]["tasks_created"] == 2
    assert {e["detail"]["id"] for e in received} <= {r["eventID"] for r in records}
    # And every event, as delivered, matches its documented schema (docs/events.md)
    for delivered in received:
        assert delivered["detail"]["version"] == "v1"
        validate_payload(DomainEvent.model_validate(delivered["detail"]))


def _record(event_id: str, sequence: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventID": event_id,
        "eventName": "MODIFY",
        "dynamodb": {
            "OldImage": old,
            "NewImage": new,
            "SequenceNumber": sequence,
            "ApproximateCreationDateTime": 1714564800,
        },
    }


def _task_image(status: str) -> dict[str, Any]:
    return {
        k: {"S": v}
        for k, v in {"entity": "task", "project_id": "p_1", "task_id": "t_1", "status": status}.items()
    }


def test_a_record_announcing_two_events_puts_both_on_the_bus_and_retries_from_itself(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch: a lease, then a task's export (task.exported and task.completed), then a counter
    records = [
        _record("rec-1", "100", _task_image("queued"), _task_image("leased")),
        _record("rec-2", "200", _task_image("approved"), _task_image("exported")),
        _record("rec-3", "300", {"entity": {"S": "counter"}}, {"entity": {"S": "counter"}}),
    ]
    queue = _bus_queue(aws)

    # When the batch is published
    assert events.publish_changes(records) == []

    # Then the bus carried three events, the export's second with the record's id + ".1"
    received: list[dict[str, Any]] = []
    while batch := aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"])["detail"] for m in batch]
        aws.sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    assert sorted((e["id"], e["type"]) for e in received) == [
        ("rec-1", "task.leased"),
        ("rec-2", "task.exported"),
        ("rec-2.1", "task.completed"),
    ]
    assert {e["occurred_at"] for e in received} == {"2024-05-01T12:00:00.000Z"}

    # And when the bus refuses the export's second event, the batch is retried from its record
    monkeypatch.setattr(events.bus, "publish", lambda bus_name, published: 2)
    assert events.publish_changes(records) == ["200"]
