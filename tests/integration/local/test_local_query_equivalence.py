"""The indexed Query and the journaled TransactWriteItems give what moto itself gives.

Two tables built from the spec's tasks table receive the same random writes: one
through the patched paths, the other with moto's own ``query`` and
``transact_write_items`` (``patches.moto_semantics()``). After every write a random
Query (base table or GSI, every key operator, both directions, Limit, filters,
projections, paging with ExclusiveStartKey) runs on both; pages must be equal. At
the end the tables and their streams must be equal too.

The one intended difference (DynamoDB's, not moto's): a page that stops at Limit
carries a LastEvaluatedKey even when nothing matches after it; the next page is then empty.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local import patches
from infra.local.resources import create_table
from infra.local.stack import local_spec
from infra.spec import TableSpec

PATCHED, MOTO = "eq-patched", "eq-moto"
PARTITIONS = ["PROJECT#p1", "PROJECT#p2", "PROJECT#p3"]
SORT_KEYS = [f"TASK#{i:03d}" for i in range(60)] + ["ANNOTATION#1", "IMPORT#1", "PROJECT"]
STATUS_PARTITIONS = [f"PROJECT#p1#STATUS#{s}" for s in ("new", "queued", "done")] + ["PROJECTS"]
TIME_PARTITIONS = ["PROJECT#p1#TASKS", "PROJECT#p2#TASKS"]
TIMES = [f"2026-11-{d:02d}T0{h}:00" for d in (1, 2, 3) for h in (1, 2)]  # few values: many ties


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Given the two tables (from the spec's tasks table, streams on) in an in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    installed_before = patches.is_installed()
    patches.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            tasks: TableSpec = local_spec().tables["tasks"]
            for name in (PATCHED, MOTO):
                create_table(client, replace(tasks, name=name), stream=True)
            yield client
    finally:
        if not installed_before:
            patches.uninstall()


# --------------------------------------------------------------------------- random writes


def random_item(rng: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": {"S": rng.choice(PARTITIONS)},
        "SK": {"S": rng.choice(SORT_KEYS)},
        "n": {"N": str(rng.randint(0, 20))},
        "entity": {"S": rng.choice(["task", "annotation"])},
    }
    if rng.random() < 0.7:  # sparse GSIs: some items are in neither
        item["GSI1PK"] = {"S": rng.choice(STATUS_PARTITIONS)}
        item["GSI1SK"] = {"S": rng.choice(TIMES) + "#" + item["SK"]["S"][-3:]}
    if rng.random() < 0.5:
        item["GSI2PK"] = {"S": rng.choice(TIME_PARTITIONS)}
        item["GSI2SK"] = {"S": rng.choice(TIMES)}  # ties on the index sort key
    if rng.random() < 0.2:
        item["blob"] = {"B": bytes([rng.randint(0, 255) for _ in range(4)])}
    return item


def random_key(rng: random.Random) -> dict[str, Any]:
    return {"PK": {"S": rng.choice(PARTITIONS)}, "SK": {"S": rng.choice(SORT_KEYS)}}


def random_update(rng: random.Random) -> dict[str, Any]:
    choice = rng.randrange(4)
    values: dict[str, Any] = {}
    if choice == 0:  # move the item to another GSI1 partition (or into the index)
        expression = "SET GSI1PK = :g, GSI1SK = :s"
        values = {":g": {"S": rng.choice(STATUS_PARTITIONS)}, ":s": {"S": rng.choice(TIMES)}}
    elif choice == 1:  # leave the index
        expression = "REMOVE GSI1PK, GSI2SK"
    elif choice == 2:
        expression = "SET n = :n"
        values = {":n": {"N": str(rng.randint(0, 20))}}
    else:
        expression = "SET GSI2PK = :g, GSI2SK = :s"
        values = {":g": {"S": rng.choice(TIME_PARTITIONS)}, ":s": {"S": rng.choice(TIMES)}}
    update: dict[str, Any] = {"Key": random_key(rng), "UpdateExpression": expression}
    if values:
        update["ExpressionAttributeValues"] = values
    if rng.random() < 0.3:
        update["ConditionExpression"] = "attribute_exists(PK)"
    return update


def random_write(rng: random.Random) -> tuple[str, dict[str, Any]]:
    kind = rng.choices(["put", "update", "delete", "transact", "batch"], weights=[5, 4, 2, 3, 1])[0]
    if kind == "put":
        params: dict[str, Any] = {"Item": random_item(rng)}
        if rng.random() < 0.2:
            params["ConditionExpression"] = "attribute_not_exists(PK)"
        return "put_item", params
    if kind == "update":
        return "update_item", random_update(rng)
    if kind == "delete":
        return "delete_item", {"Key": random_key(rng)}
    if kind == "transact":
        actions: list[dict[str, Any]] = []
        keys = set()
        for _ in range(rng.randint(2, 4)):
            item = random_item(rng)
            key = (item["PK"]["S"], item["SK"]["S"])
            if key in keys:
                continue
            keys.add(key)
            key_attrs = {"PK": item["PK"], "SK": item["SK"]}
            action = rng.choice(["Put", "Update", "Delete", "ConditionCheck"])
            if action == "Put":
                actions.append({"Put": {"Item": item}})
            elif action == "Update":
                update = random_update(rng) | {"Key": key_attrs}
                update.pop("ConditionExpression", None)
                actions.append({"Update": update})
            elif action == "Delete":
                actions.append({"Delete": {"Key": key_attrs}})
            else:
                condition = rng.choice(["attribute_exists(PK)", "attribute_not_exists(PK)"])
                actions.append({"ConditionCheck": {"Key": key_attrs, "ConditionExpression": condition}})
        return "transact_write_items", {"TransactItems": actions}
    requests, keys = [], set()
    for _ in range(rng.randint(1, 25)):
        item = random_item(rng)
        key = (item["PK"]["S"], item["SK"]["S"])
        if key not in keys:
            keys.add(key)
            if rng.random() < 0.7:
                requests.append({"PutRequest": {"Item": item}})
            else:
                requests.append({"DeleteRequest": {"Key": {"PK": item["PK"], "SK": item["SK"]}}})
    return "batch_write_item", {"RequestItems": requests}


def for_table(operation: str, params: dict[str, Any], table: str) -> dict[str, Any]:
    if operation == "batch_write_item":
        return {"RequestItems": {table: params["RequestItems"]}}
    if operation == "transact_write_items":
        return {
            "TransactItems": [
                {kind: body | {"TableName": table} for kind, body in action.items()}
                for action in params["TransactItems"]
            ]
        }
    return params | {"TableName": table}


def outcome(client: Any, operation: str, params: dict[str, Any]) -> tuple[str, ...]:
    try:
        getattr(client, operation)(**params)
        return ("ok",)
    except ClientError as error:
        reasons = error.response.get("CancellationReasons", [])
        return (error.response["Error"]["Code"], *(r.get("Code", "") for r in reasons))


def write_both(client: Any, operation: str, params: dict[str, Any]) -> None:
    patched = outcome(client, operation, for_table(operation, params, PATCHED))
    with patches.moto_semantics():
        moto = outcome(client, operation, for_table(operation, params, MOTO))
    assert patched == moto, (operation, params)


# --------------------------------------------------------------------------- random queries


def random_query(rng: random.Random) -> dict[str, Any]:
    index = rng.choice([None, "GSI1", "GSI2"])
    if index is None:
        hash_attr, range_attr, hashes, ranges = "PK", "SK", PARTITIONS, SORT_KEYS
    elif index == "GSI1":
        hash_attr, range_attr, hashes, ranges = "GSI1PK", "GSI1SK", STATUS_PARTITIONS, TIMES
    else:
        hash_attr, range_attr, hashes, ranges = "GSI2PK", "GSI2SK", TIME_PARTITIONS, TIMES
    names = {"#h": hash_attr, "#r": range_attr}
    values: dict[str, Any] = {":h": {"S": rng.choice([*hashes, "NO-SUCH-PARTITION"])}}
    condition = "#h = :h"
    operator = rng.choice([None, "=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"])
    if operator == "BETWEEN":
        low, high = sorted(rng.sample(ranges, 2)) if rng.random() < 0.9 else rng.sample(ranges, 2)
        condition += " AND #r BETWEEN :a AND :b"
        values |= {":a": {"S": low}, ":b": {"S": high}}
    elif operator == "begins_with":
        value = rng.choice(ranges)
        condition += " AND begins_with(#r, :a)"
        values[":a"] = {"S": value[: rng.randint(1, len(value))]}
    elif operator is not None:
        condition += f" AND #r {operator} :a"
        values[":a"] = {"S": rng.choice(ranges)}
    query: dict[str, Any] = {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": rng.random() < 0.5,
    }
    if index:
        query["IndexName"] = index
    if rng.random() < 0.7:
        query["Limit"] = rng.randint(1, 7)
    if rng.random() < 0.3:
        query["FilterExpression"] = "n > :f"
        values[":f"] = {"N": str(rng.randint(0, 20))}
    if rng.random() < 0.2:
        query["ProjectionExpression"] = "PK, SK, #r, n"
    if "#r" not in condition and "ProjectionExpression" not in query:
        del names["#r"]  # DynamoDB refuses unused names
    return query


def query_page(client: Any, table: str, query: dict[str, Any], moto: bool) -> dict[str, Any]:
    if moto:
        with patches.moto_semantics():
            return dict(client.query(TableName=table, **query))
    return dict(client.query(TableName=table, **query))


def compare_paged(client: Any, query: dict[str, Any]) -> None:
    """Page through the query on both tables; every page must match."""
    start: dict[str, Any] | None = None
    for _ in range(100):
        page_query = query | ({"ExclusiveStartKey": start} if start else {})
        patched = query_page(client, PATCHED, page_query, moto=False)
        moto = query_page(client, MOTO, page_query, moto=True)
        assert patched["Items"] == moto["Items"], page_query
        assert patched["Count"] == moto["Count"], page_query
        assert patched["ScannedCount"] == moto["ScannedCount"], page_query
        patched_key, moto_key = patched.get("LastEvaluatedKey"), moto.get("LastEvaluatedKey")
        if moto_key is None and patched_key is not None:
            # DynamoDB's semantics: the page stopped at Limit; there is nothing after it.
            assert patched["ScannedCount"] == query.get("Limit")
            after = query_page(client, PATCHED, query | {"ExclusiveStartKey": patched_key}, moto=False)
            assert after["Items"] == [] and "LastEvaluatedKey" not in after
            return
        assert patched_key == moto_key, page_query
        if patched_key is None:
            return
        start = patched_key
    raise AssertionError("paging did not end")


def table_snapshot(client: Any, table: str) -> list[dict[str, Any]]:
    items = client.scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def stream_history(table: str) -> list[tuple[str, Any, Any, Any]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return [
        (r["eventName"], r["dynamodb"]["Keys"], r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage"))
        for r in records
    ]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_writes_and_queries_match_moto(ddb: Any, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        # Given the same random write applied to both tables (with the same outcome)
        write_both(ddb, *random_write(rng))
        # When the same random query pages through both
        # Then every page is the same
        compare_paged(ddb, random_query(rng))
    # And the tables and their stream histories are identical
    assert table_snapshot(ddb, PATCHED) == table_snapshot(ddb, MOTO)
    assert stream_history(PATCHED) == stream_history(MOTO)


def test_a_page_that_stops_at_limit_has_a_last_evaluated_key_even_at_the_end(ddb: Any) -> None:
    # Given a partition of exactly three items
    for sk in ("A", "B", "C"):
        ddb.put_item(TableName=PATCHED, Item={"PK": {"S": "P"}, "SK": {"S": sk}})
    query: dict[str, Any] = {
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": "P"}},
        "Limit": 3,
    }

    # When the first page asks for three
    page = ddb.query(TableName=PATCHED, **query)

    # Then, as in DynamoDB, it stops at Limit with a LastEvaluatedKey, and the next page is empty
    assert [i["SK"]["S"] for i in page["Items"]] == ["A", "B", "C"]
    assert page["LastEvaluatedKey"] == {"PK": {"S": "P"}, "SK": {"S": "C"}}
    after = ddb.query(TableName=PATCHED, ExclusiveStartKey=page["LastEvaluatedKey"], **query)
    assert after["Items"] == [] and "LastEvaluatedKey" not in after


def test_a_cancelled_transaction_leaves_items_index_and_stream_as_before(ddb: Any) -> None:
    # Given an item in the GSI1 partition "new"
    key = {"PK": {"S": "PROJECT#p1"}, "SK": {"S": "TASK#001"}}
    ddb.put_item(
        TableName=PATCHED, Item=key | {"GSI1PK": {"S": "S#new"}, "GSI1SK": {"S": "1"}, "n": {"N": "1"}}
    )
    before_stream = stream_history(PATCHED)

    # When a transaction moves it to "done" but a condition on another item fails
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": PATCHED,
                        "Key": key,
                        "UpdateExpression": "SET GSI1PK = :d",
                        "ExpressionAttributeValues": {":d": {"S": "S#done"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": PATCHED,
                        "Key": {"PK": {"S": "PROJECT#p1"}, "SK": {"S": "TASK#404"}},
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
            ]
        )

    # Then it is cancelled with its reasons, and the item, the index and the stream are unchanged
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]

    def in_status(status: str) -> list[str]:
        page = ddb.query(
            TableName=PATCHED,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :s",
            ExpressionAttributeValues={":s": {"S": status}},
        )
        return [i["SK"]["S"] for i in page["Items"]]

    assert in_status("S#new") == ["TASK#001"]
    assert in_status("S#done") == []
    assert ddb.get_item(TableName=PATCHED, Key=key)["Item"]["GSI1PK"] == {"S": "S#new"}
    assert stream_history(PATCHED) == before_stream
