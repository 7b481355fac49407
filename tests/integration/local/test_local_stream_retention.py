"""Stream records and shard iterators do not pile up in the local stack: kept until read, or 24 h."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodbstreams.models import dynamodbstreams_backends

from infra.local import patches
from infra.local.moto_server import ACCOUNT_ID, REGION
from tests.integration.local import fixture_handlers
from tests.integration.local.test_local_pollers import put_records, stream_poller, stream_table, wait_until

pytestmark = pytest.mark.usefixtures("moto_server")


def shard_records(table: str) -> list[Any]:
    shard = dynamodb_backends[ACCOUNT_ID][REGION].tables[table].stream_shard
    assert shard is not None
    return list(shard.items)


def read_all(stream_arn: str, position: str = "TRIM_HORIZON") -> list[int]:
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType=position)[
        "ShardIterator"
    ]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


def test_records_every_consumer_processed_are_dropped_and_numbering_goes_on() -> None:
    # Given a stream with two registered consumers and ten records
    arn = stream_table("sr-two-consumers")
    patches.register_stream_consumer(arn, "first")
    patches.register_stream_consumer(arn, "second")
    put_records("sr-two-consumers", 10, failing=set())
    sequence = read_all(arn)
    assert len(sequence) == 10

    # When the first consumer has processed all ten, and the second only six
    dropped_after_first = patches.stream_consumed(arn, "first", sequence[-1])
    dropped_after_second = patches.stream_consumed(arn, "second", sequence[5])

    # Then nothing was dropped while the second had not read them, then the six both had read
    assert dropped_after_first == 0
    assert dropped_after_second == 6
    assert len(shard_records("sr-two-consumers")) == 4
    # And a reader from the oldest record gets the four kept, with their sequence numbers
    assert read_all(arn) == sequence[6:]
    # And new records continue the numbering, and LATEST starts after the last record
    put_records("sr-two-consumers", 1, failing=set())
    assert read_all(arn)[-1] == sequence[-1] + 1
    assert read_all(arn, "LATEST") == []
    patches.unregister_stream_consumer(arn, "first")
    patches.unregister_stream_consumer(arn, "second")


def test_records_older_than_24_hours_are_dropped_even_if_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a consumer that never processed anything, and records older than the retention
    arn = stream_table("sr-expired")
    patches.register_stream_consumer(arn, "slow")
    put_records("sr-expired", 3, failing=set())
    monkeypatch.setattr(patches, "STREAM_RETENTION", patches.datetime.timedelta(seconds=-60))

    # When any consumer reports progress
    dropped = patches.stream_consumed(arn, "slow", 0)

    # Then the expired records are gone, as DynamoDB Streams drops them after 24 h
    assert dropped == 3
    assert shard_records("sr-expired") == []
    patches.unregister_stream_consumer(arn, "slow")


def test_shard_iterators_expire_instead_of_accumulating(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given iterators that expire at once and are swept on every read
    arn = stream_table("sr-iterators")
    put_records("sr-iterators", 2, failing=set())
    monkeypatch.setattr(patches, "ITERATOR_TTL_S", -1)
    monkeypatch.setattr(patches, "ITERATOR_SWEEP_S", 0.0)
    patches._retention.next_sweep = 0.0
    backend = dynamodbstreams_backends[ACCOUNT_ID][REGION]

    # When a poller-like reader asks for records 50 times
    for _ in range(50):
        read_all(arn)

    # Then moto holds no more than the iterators of the last read, not one per call
    assert len(backend.shard_iterators) <= 2


def test_a_poller_lets_moto_drop_what_its_function_processed() -> None:
    # Given a stream whose only consumer is a local poller, and twelve records
    fixture_handlers.reset()
    arn = stream_table("sr-poller")
    failed_url = boto3.client("sqs").create_queue(QueueName="sr-poller-failed")["QueueUrl"]
    put_records("sr-poller", 12, failing=set())
    poller = stream_poller("sr-poller-fn", arn, failed_url)

    # When it has delivered them all
    poller.start()
    try:
        wait_until(lambda: sum(len(i) for i in fixture_handlers.stream_invocations) >= 12)
        wait_until(lambda: not shard_records("sr-poller"))
    finally:
        poller.stop()

    # Then every record reached the function once, and the shard holds none of them any more
    assert sum(len(i) for i in fixture_handlers.stream_invocations) == 12
    assert shard_records("sr-poller") == []
