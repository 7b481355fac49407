"""Read a table's DynamoDB stream in-process (moto) and hand it to a stream-triggered handler.

Lambda's event source mapping does this in AWS; the local stack's StreamPoller does it in
``make dev``. Tests drive it by hand so they decide when the chainer runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from tests.integration.api_client import LambdaContextStub

REGION = "us-east-1"


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's DynamoDB event carries it (epoch seconds, source ARN)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


class StreamReader:
    """Reads every shard of one table's stream from its start; each ``read`` returns what is new."""

    def __init__(self, table_name: str) -> None:
        self._streams = boto3.client("dynamodbstreams", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        self.stream_arn = ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self._iterators: dict[str, str | None] = {}

    def read(self) -> list[dict[str, Any]]:
        shards = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            while iterator:
                response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                iterator = response.get("NextShardIterator")
                self._iterators[shard_id] = iterator
                if not response["Records"]:
                    break
                records += [lambda_record(r, self.stream_arn) for r in response["Records"]]
        return records


def deliver(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Invoke ``handler`` with one batch, as Lambda's event source mapping does."""
    return handler({"Records": records}, LambdaContextStub(function_name="serval-local-audit-chainer"))
