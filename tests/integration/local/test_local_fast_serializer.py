"""The fast DynamoDB response path answers exactly what moto's own serializer answers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import patches
from infra.local.resources import create_table
from infra.local.stack import local_spec

ITEM = {
    "PK": {"S": "PROJECT#p"},
    "SK": {"S": "TASK#1"},
    "GSI2PK": {"S": "PROJECT#p#TASKS"},
    "GSI2SK": {"S": "2026#1"},
    "text": {"S": "héllo ✓"},
    "n": {"N": "12.50"},
    "big": {"N": "123456789012345678901234567890"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "blob": {"B": base64.b64decode(base64.b64encode(b"\x00\x01binary"))},
    "tags": {"SS": ["a", "b"]},
    "nums": {"NS": ["1", "2.5"]},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": False}}}]}}},
}


@pytest.fixture
def client() -> Iterator[Any]:
    installed_before = patches.is_installed()
    patches.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        table = local_spec().tables["tasks"]
        create_table(dynamodb, table)
        dynamodb.put_item(TableName=table.name, Item=ITEM)
        for i in range(2, 6):
            dynamodb.put_item(
                TableName=table.name, Item={**ITEM, "SK": {"S": f"TASK#{i}"}, "GSI2SK": {"S": f"2026#{i}"}}
            )
        yield dynamodb, table.name
    if not installed_before:
        patches.uninstall()


def _requests(name: str) -> list[tuple[str, dict[str, Any]]]:
    key = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
    return [
        ("get_item", {"TableName": name, "Key": key}),
        ("get_item", {"TableName": name, "Key": {"PK": {"S": "nope"}, "SK": {"S": "nope"}}}),
        (
            "get_item",
            {
                "TableName": name,
                "Key": key,
                "ProjectionExpression": "#t, nested",
                "ExpressionAttributeNames": {"#t": "text"},
            },
        ),
        (
            "query",
            {
                "TableName": name,
                "KeyConditionExpression": "PK = :p",
                "Limit": 2,
                "ExpressionAttributeValues": {":p": ITEM["PK"]},
                "ReturnConsumedCapacity": "TOTAL",
            },
        ),
        (
            "query",
            {
                "TableName": name,
                "IndexName": "GSI2",
                "KeyConditionExpression": "GSI2PK = :p",
                "ExpressionAttributeValues": {":p": ITEM["GSI2PK"]},
                "ScanIndexForward": False,
                "Select": "COUNT",
            },
        ),
        ("scan", {"TableName": name, "Limit": 3}),
        (
            "batch_get_item",
            {"RequestItems": {name: {"Keys": [key, {"PK": ITEM["PK"], "SK": {"S": "TASK#3"}}]}}},
        ),
        ("transact_get_items", {"TransactItems": [{"Get": {"TableName": name, "Key": key}}]}),
    ]


def test_fast_responses_equal_moto_serializer_responses(client: Any) -> None:
    dynamodb, name = client
    for operation, params in _requests(name):
        # When the same request is answered by the fast path and by moto's serializer
        fast = getattr(dynamodb, operation)(**params)
        with patches.moto_semantics():
            slow = getattr(dynamodb, operation)(**params)
        # Then boto3 parses the same response from both
        fast.pop("ResponseMetadata")
        slow.pop("ResponseMetadata")
        assert fast == slow, operation


def test_stream_records_equal_moto_serializer_records(client: Any) -> None:
    # Given a table with a stream and a few changes recorded on it
    dynamodb, name = client
    dynamodb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    dynamodb.put_item(TableName=name, Item={**ITEM, "SK": {"S": "TASK#9"}})
    dynamodb.delete_item(TableName=name, Key={"PK": ITEM["PK"], "SK": {"S": "TASK#9"}})
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

    def records() -> list[Any]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        return streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]  # type: ignore[no-any-return]

    # When they are read through the fast path and through moto's serializer
    fast = records()
    with patches.moto_semantics():
        slow = records()
    # Then boto3 parses the same records, timestamps included
    assert len(fast) == 2
    assert fast == slow


def test_errors_still_go_through_moto(client: Any) -> None:
    dynamodb, _ = client
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.get_item(TableName="missing", Key={"PK": {"S": "a"}, "SK": {"S": "b"}})
