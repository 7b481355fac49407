"""DynamoDB tables and the event bus are built exactly from infra.spec."""

from __future__ import annotations

import pytest
from cfn_helpers import only, resources

from infra.constructs.nag import acknowledgements

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
    # Then streams (only where the spec has one), TTL, PITR, billing and encryption follow spec and config
    for table_spec in spec.tables.values():
        props = tables[table_spec.name]
        stream = {"StreamViewType": table_spec.stream} if table_spec.stream else None
        assert props.get("StreamSpecification") == stream, table_spec.id
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


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("prod", True)])
def test_audit_table_is_recoverable_streamed_expiring_and_protected_in_prod(synth, env, protected):
    # Given the environment's audit table
    props = _tables_by_name(synth, env)[synth.envs[env].spec.tables["audit"].name]
    # Then it can be restored to any point in time, in every environment
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # And it cannot be deleted in prod
    assert props["DeletionProtectionEnabled"] is protected
    # And its stream carries old and new images (the chainer links records from it)
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    # And records expire through the TTL attribute (audit_ttl_days sets it; 0 keeps records forever)
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # And GSI3 orders each scope's hash chain
    assert {
        "IndexName": "GSI3",
        "KeySchema": [
            {"AttributeName": "GSI3PK", "KeyType": "HASH"},
            {"AttributeName": "GSI3SK", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    } in props["GlobalSecondaryIndexes"]


@pytest.mark.parametrize(("env", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_every_spec_secret_is_generated_with_its_name_and_kept_like_the_data(synth, env, policy):
    # Given the environment's spec and the Data stack's secrets
    spec = synth.envs[env].spec
    secrets = {
        s["Properties"]["Name"]: s
        for s in resources(synth.raw(env, "Data"), "AWS::SecretsManager::Secret").values()
    }
    # Then there is one secret per SecretSpec, named and described by the spec
    assert set(secrets) == {s.name for s in spec.secrets.values()} == {f"serval-{env}/audit-seal-key"}
    for secret_spec in spec.secrets.values():
        secret = secrets[secret_spec.name]
        assert secret["Properties"]["Description"] == secret_spec.description
        # And its value is generated by Secrets Manager (never in the template): 64 hex digits
        generated = secret["Properties"]["GenerateSecretString"]
        assert "SecretString" not in secret["Properties"]
        assert generated["PasswordLength"] == 64
        assert generated["ExcludePunctuation"] is True and generated["ExcludeUppercase"] is True
        assert set(generated["ExcludeCharacters"]) == set("ghijklmnopqrstuvwxyz")
        # And it is deleted with the stack in dev, kept in prod
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == policy


def test_secret_rotation_is_acknowledged_with_the_reason_it_does_not_apply(synth):
    # Given the acknowledgements on the dev audit seal key
    found = acknowledgements(synth.envs["dev"].stacks["Data"])
    (reason,) = [rules["AwsSolutions-SMG4"] for rules in found.values() if "AwsSolutions-SMG4" in rules]
    # Then it says why the key is not rotated
    assert "HMAC" in reason and "verification" in reason
