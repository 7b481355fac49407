"""DynamoDB tables and the event bus are built exactly from infra.spec."""

from __future__ import annotations

import pytest
from cfn_helpers import only, resources

ENVS = ("dev", "prod")


def _tables_by_name(synth, env):
    tables = resources(synth.raw(env, "Data"), "AWS::DynamoDB::Table")
    return {t["Properties"]["TableName"]: t["Properties"] for t in tables.values()}


@pytest.mark.parametrize("env", ENVS)
def test_every_spec_table_has_the_spec_key_schema_and_indexes(synth, env):
    # Given the spec of the environment
    spec = synth.envs[env].spec
    # When the Data stack's tables are read by name
    tables = _tables_by_name(synth, env)
    # Then there is exactly one table per TableSpec, with its keys and ALL-projected GSIs
    assert set(tables) == {t.name for t in spec.tables.values()}
    for table_spec in spec.tables.values():
        props = tables[table_spec.name]
        assert props["KeySchema"] == [
            {"AttributeName": table_spec.pk, "KeyType": "HASH"},
            {"AttributeName": table_spec.sk, "KeyType": "RANGE"},
        ]
        assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
            name: "S" for name in table_spec.key_attributes
        }
        assert props["GlobalSecondaryIndexes"] == [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.pk, "KeyType": "HASH"},
                    {"AttributeName": index.sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table_spec.indexes
        ]


@pytest.mark.parametrize("env", ENVS)
def test_tables_stream_expire_recover_and_bill_on_demand(synth, env):
    # Given the environment's config and spec
    spec = synth.envs[env].spec
    # When the tables are read
    tables = _tables_by_name(synth, env)
    # Then streams, TTL, PITR, billing and encryption follow spec and config
    for table_spec in spec.tables.values():
        props = tables[table_spec.name]
        assert props["StreamSpecification"] == {"StreamViewType": table_spec.stream}
        assert props["TimeToLiveSpecification"] == {
            "AttributeName": table_spec.ttl_attribute,
            "Enabled": True,
        }
        assert props["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": spec.config.point_in_time_recovery
        }
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["DeletionProtectionEnabled"] is spec.config.deletion_protection


def test_event_bus_is_named_by_the_spec(synth):
    # Given the dev spec
    spec = synth.envs["dev"].spec
    # When the Data stack's bus is read
    _, bus = only(synth.raw("dev", "Data"), "AWS::Events::EventBus")
    # Then it carries the spec's bus name
    assert bus["Properties"]["Name"] == spec.event_bus_name
