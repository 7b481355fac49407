"""The event-source pollers behave like the Lambda service: partial batches, redrive, ordered streams."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local.pollers import (
    SchedulePoller,
    ScheduleSource,
    SqsPoller,
    SqsSource,
    StreamPoller,
    StreamSource,
    batch_item_failures,
)
from tests.integration.local import fixture_handlers
from tests.integration.local.helpers import create_function, wait_until

pytestmark = pytest.mark.usefixtures("moto_server")


@pytest.fixture(autouse=True)
def _fresh_handlers() -> Iterator[None]:
    fixture_handlers.reset()
    yield
    fixture_handlers.reset()


def queue_with_dlq(name: str, *, visibility_s: int, max_receive_count: int) -> tuple[str, str, str]:
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq


def messages_in(url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def sqs_source(function: str, url: str, arn: str) -> SqsSource:
    return SqsSource(
        function_name=function,
        function_timeout_s=30,
        queue_url=url,
        queue_arn=arn,
        batch_size=10,
        max_concurrency=2,
        batching_window_s=0.3,
        report_batch_item_failures=True,
        region="us-east-1",
    )


def test_sqs_partial_batch_failures_are_retried_then_redriven_to_the_dlq() -> None:
    # Given a queue (5 s visibility: longer than a cold start on a loaded machine, so a good
    # message is never seen again before it is deleted; redrive after 2 receives) feeding a
    # function that reports poison messages
    url, arn, dlq = queue_with_dlq("pt-partial", visibility_s=5, max_receive_count=2)
    create_function("pt-sqs-partial", "sqs_partial")
    boto3.client("sqs").send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(["good-1", "poison-1", "good-2"])
        ],
    )
    poller = SqsPoller(sqs_source("pt-sqs-partial", url, arn), wait_time_s=1)

    # When the poller runs until the poison message reaches the DLQ
    poller.start()
    try:
        wait_until(lambda: messages_in(dlq) == 1)
        wait_until(lambda: messages_in(url) == 0)
    finally:
        poller.stop()

    # Then the good messages were delivered once and deleted; the poison one was delivered twice
    deliveries = fixture_handlers.sqs_deliveries
    assert sorted(d["body"] for d in deliveries if d["body"].startswith("good")) == ["good-1", "good-2"]
    assert [d["receive_count"] for d in deliveries if d["body"] == "poison-1"] == [1, 2]
    # And the DLQ holds exactly the poison message
    dead = boto3.client("sqs").receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in dead] == ["poison-1"]


def test_sqs_records_have_the_lambda_event_shape() -> None:
    # Given a message with a message attribute on a queue feeding a function
    url, arn, _ = queue_with_dlq("pt-shape", visibility_s=30, max_receive_count=5)
    create_function("pt-sqs-shape", "sqs_partial")
    boto3.client("sqs").send_message(
        QueueUrl=url,
        MessageBody="good-shape",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "x"}},
    )
    poller = SqsPoller(sqs_source("pt-sqs-shape", url, arn), wait_time_s=1)

    # When it is delivered
    poller.start()
    try:
        wait_until(lambda: messages_in(url) == 0)
    finally:
        poller.stop()

    # Then the record carries what Lambda's SQS records carry
    (delivery,) = fixture_handlers.sqs_deliveries
    record = delivery["record"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["body"] == "good-shape"
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId"}
    assert record["messageAttributes"]["kind"]["stringValue"] == "x"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"


def test_a_function_error_leaves_the_whole_batch_for_redrive() -> None:
    # Given a queue redriving after one receive, feeding a function that raises
    url, arn, dlq = queue_with_dlq("pt-error", visibility_s=1, max_receive_count=1)
    create_function("pt-sqs-error", "fail")
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody="any")
    poller = SqsPoller(sqs_source("pt-sqs-error", url, arn), wait_time_s=1)

    # When the poller runs
    poller.start()
    try:
        wait_until(lambda: messages_in(dlq) == 1)
    finally:
        poller.stop()

    # Then nothing was deleted: the message went to the DLQ after its visibility timeout
    assert messages_in(url) == 0


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", set()),
        (b"null", set()),
        (b"{}", set()),
        (b'{"batchItemFailures": null}', set()),
        (b'{"batchItemFailures": []}', set()),
        (b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}', {"m2"}),
        (b"not json", None),
        (b'"ok"', None),
        (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": null}]}', None),
        (b'{"batchItemFailures": [{"id": "m2"}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": "unknown"}]}', None),
    ],
)
def test_partial_batch_responses_follow_the_aws_rules(payload: bytes, expected: set[str] | None) -> None:
    # Given a batch of m1 and m2, When the function answers with the payload
    failed = batch_item_failures(payload, ["m1", "m2"])
    # Then the failed set (None = the whole batch failed) is what Lambda would conclude
    assert failed == expected


# --------------------------------------------------------------------------- streams


def stream_table(name: str) -> str:
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(client.describe_table(TableName=name)["Table"]["LatestStreamArn"])


def put_records(table: str, count: int, failing: set[int]) -> None:
    client = boto3.client("dynamodb")
    for i in range(1, count + 1):
        item: dict[str, Any] = {"PK": {"S": "p"}, "SK": {"S": f"{i:02d}"}, "n": {"N": str(i)}}
        if i in failing:
            item["fail"] = {"BOOL": True}
        client.put_item(TableName=table, Item=item)


def stream_poller(name: str, stream_arn: str, failed_url: str, window_s: float = 0.0) -> StreamPoller:
    create_function(name, "stream_consumer")
    source = StreamSource(
        function_name=name,
        function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        function_timeout_s=30,
        stream_arn=stream_arn,
        batch_size=10,
        starting_position="TRIM_HORIZON",
        retry_attempts=2,
        bisect_batch_on_error=True,
        report_batch_item_failures=True,
        on_failure_queue_url=failed_url,
        batching_window_s=window_s,
    )
    return StreamPoller(source, poll_interval_s=0.05, retry_base_s=0.01)


def failed_batches(url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def numbers(sequence_numbers: list[str], records: list[dict[str, Any]]) -> list[int]:
    by_sequence = {r["dynamodb"]["SequenceNumber"]: int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in records}
    return [by_sequence[s] for s in sequence_numbers]


def delivered(number: int) -> bool:
    records = fixture_handlers.stream_records
    return any(number in numbers(i, records) for i in fixture_handlers.stream_invocations)


def test_stream_partial_failure_retries_from_the_failed_record_then_goes_to_the_failure_queue() -> None:
    # Given five writes, the third of which the function reports as failed every time
    arn = stream_table("pt-stream-partial")
    failed_url = boto3.client("sqs").create_queue(QueueName="pt-stream-partial-failed")["QueueUrl"]
    put_records("pt-stream-partial", 5, failing={3})
    fixture_handlers.stream_mode["mode"] = "partial"
    poller = stream_poller("pt-stream-partial-fn", arn, failed_url)

    # When the poller runs
    poller.start()
    try:
        wait_until(lambda: len(fixture_handlers.stream_invocations) >= 3)
        batches = failed_batches(failed_url)
    finally:
        poller.stop()

    # Then the first invocation had all five, and the two retries started at the failed record
    records = fixture_handlers.stream_records
    invocations = [numbers(i, records) for i in fixture_handlers.stream_invocations]
    assert invocations == [[1, 2, 3, 4, 5], [3, 4, 5], [3, 4, 5]]
    # And the abandoned records' batch metadata went to the on-failure queue
    (failure,) = batches
    info = failure["DDBStreamBatchInfo"]
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["batchSize"] == 3
    assert info["streamArn"] == arn
    assert numbers([info["startSequenceNumber"], info["endSequenceNumber"]], records) == [3, 5]
    # And the records have Lambda's stream event shape
    assert all(r["eventSourceARN"] == arn and r["eventSource"] == "aws:dynamodb" for r in records)
    assert all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], int) for r in records)


def test_stream_errors_bisect_the_batch_and_keep_the_shard_in_order() -> None:
    # Given four writes, the second of which makes the function raise
    arn = stream_table("pt-stream-bisect")
    failed_url = boto3.client("sqs").create_queue(QueueName="pt-stream-bisect-failed")["QueueUrl"]
    put_records("pt-stream-bisect", 4, failing={2})
    fixture_handlers.stream_mode["mode"] = "error"
    poller = stream_poller("pt-stream-bisect-fn", arn, failed_url)

    # When the poller runs, and later a fifth write arrives
    poller.start()
    try:
        wait_until(lambda: delivered(3))
        boto3.client("dynamodb").put_item(
            TableName="pt-stream-bisect", Item={"PK": {"S": "p"}, "SK": {"S": "05"}, "n": {"N": "5"}}
        )
        wait_until(lambda: delivered(5))
        batches = failed_batches(failed_url)
    finally:
        poller.stop()

    # Then the failing batch was split until the bad record was alone, retried, and given up
    records = fixture_handlers.stream_records
    invocations = [numbers(i, records) for i in fixture_handlers.stream_invocations]
    assert invocations == [[1, 2, 3, 4], [1, 2], [1], [2], [2], [2], [3, 4], [5]]
    (failure,) = batches
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failure["responseContext"]["functionError"] == "Unhandled"


def test_a_stream_batching_window_gathers_records_written_while_it_is_open() -> None:
    # Given a poller with a long batching window and two writes already on the stream
    arn = stream_table("pt-stream-window")
    failed_url = boto3.client("sqs").create_queue(QueueName="pt-stream-window-failed")["QueueUrl"]
    put_records("pt-stream-window", 2, failing=set())
    poller = stream_poller("pt-stream-window-fn", arn, failed_url, window_s=30.0)

    # When it starts, and eight more writes arrive while its window is open
    poller.start()
    try:
        client = boto3.client("dynamodb")
        for i in range(3, 11):
            client.put_item(
                TableName="pt-stream-window",
                Item={"PK": {"S": "p"}, "SK": {"S": f"{i:02d}"}, "n": {"N": str(i)}},
            )
        wait_until(lambda: delivered(10))
    finally:
        poller.stop()

    # Then one invocation got all ten: the batch filled up (batch size 10) before the window closed
    records = fixture_handlers.stream_records
    assert [numbers(i, records) for i in fixture_handlers.stream_invocations] == [list(range(1, 11))]


def test_a_scheduled_function_runs_at_its_rate_with_an_eventbridge_event_until_stopped() -> None:
    # Given a function on a schedule of 0.2 s (the spec's rate, shortened)
    create_function("pt-scheduled", "scheduled")
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/pt-scheduled-schedule"
    poller = SchedulePoller(ScheduleSource("pt-scheduled", 30, 0.2, arn, "us-east-1", "123456789012"))
    # When its poller runs for a while
    poller.start()
    try:
        wait_until(lambda: len(fixture_handlers.scheduled_events) >= 3, timeout_s=20)
    finally:
        poller.stop()
    # Then each run got the event EventBridge gives a schedule's Lambda target
    runs = len(fixture_handlers.scheduled_events)
    for event in fixture_handlers.scheduled_events:
        assert (event["source"], event["detail-type"], event["resources"]) == (
            "aws.events",
            "Scheduled Event",
            [arn],
        )
        assert (event["region"], event["account"], event["detail"]) == ("us-east-1", "123456789012", {})
    assert len({e["id"] for e in fixture_handlers.scheduled_events}) == runs
    # And once stopped it runs no more
    time.sleep(0.6)
    assert len(fixture_handlers.scheduled_events) == runs
