"""DynamoDB request units estimated from calls (bench.capacity), by DynamoDB's published rules."""

from __future__ import annotations

import pytest

from bench.capacity import CapacityLog, Shape


def _item(sk: str, pad: int, *indexes: str) -> dict[str, dict[str, str]]:
    item = {"PK": {"S": "PROJECT#p"}, "SK": {"S": sk}, "pad": {"S": "x" * pad}}
    return item | {name: {"S": "k"} for name in indexes}


def test_a_put_costs_a_write_unit_per_kilobyte_in_the_table_and_in_each_of_its_indexes() -> None:
    # Given a 1.5 KB item in GSI1 and GSI2, put on its own
    log = CapacityLog()
    log.observe(
        "api",
        "dynamodb",
        "PutItem",
        {"TableName": "t", "Item": _item("TASK#1", 1_500, "GSI1PK", "GSI2PK")},
        {},
    )
    # Then it costs 2 units in the table and 2 in each index
    units = log.units({})
    assert units.write["api"] == 6
    assert units.index_writes["api"] == 4
    assert units.write_by_table["t"] == 6


def test_a_transactional_update_that_moves_an_index_key_costs_double_there() -> None:
    # Given a 500-byte task item in GSI1 and GSI2, updated in a transaction that sets GSI1SK
    log = CapacityLog()
    update = {
        "TableName": "t",
        "Key": {"PK": {"S": "PROJECT#p"}, "SK": {"S": "TASK#1"}},
        "UpdateExpression": "SET #g = :g, #s = :s",
        "ExpressionAttributeNames": {"#g": "GSI1SK", "#s": "status"},
    }
    log.observe("workflow", "dynamodb", "TransactWriteItems", {"TransactItems": [{"Update": update}]}, {})
    # Then: 2 units (transactional) in the table, 1 in GSI2 and 2 in GSI1 (old entry out, new in)
    units = log.units({("PROJECT#p", "TASK#1"): Shape(500, frozenset({"GSI1PK", "GSI2PK"}))})
    assert units.write["workflow"] == 5
    assert units.write_by_item[("PROJECT#p", "TASK#1")] == 2


def test_reads_cost_per_4_kb_half_when_eventual_and_twice_in_a_transaction() -> None:
    log = CapacityLog()
    key = {"PK": {"S": "PROJECT#p"}, "SK": {"S": "TASK#1"}}
    items = [_item(f"TASK#{i}", 2_000) for i in range(3)]
    # a Query of three 2 KB items (eventually consistent): 6 KB read, 2 blocks, half price
    log.observe("api", "dynamodb", "Query", {"TableName": "t"}, {"Items": items})
    # a consistent GetItem of a small item: 1 unit
    log.observe("api", "dynamodb", "GetItem", {"TableName": "t", "Key": key, "ConsistentRead": True}, {})
    # a ConditionCheck: a transactional read, 2 units
    check = {"ConditionCheck": {"TableName": "t", "Key": key, "ConditionExpression": "attribute_exists(PK)"}}
    log.observe("api", "dynamodb", "TransactWriteItems", {"TransactItems": [check]}, {})
    shapes = {("PROJECT#p", f"TASK#{i}"): Shape(2_000, frozenset()) for i in range(3)}
    assert log.units(shapes).read["api"] == pytest.approx(1 + 1 + 2)


def test_other_services_are_not_dynamodb_capacity() -> None:
    log = CapacityLog()
    log.observe("api", "sqs", "SendMessage", {"QueueUrl": "q"}, {})
    assert not log.writes and not log.reads
