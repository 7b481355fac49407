"""Smoke tests of every moto internal the local stack hooks or reads: a moto upgrade fails here first."""

from __future__ import annotations

import importlib.metadata
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.cognitoidp.models import CognitoIdpUser, cognitoidp_backends
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.s3.models import s3_backends

from infra.local import ddb_index, patches
from infra.local.resources import LAMBDA_TRUST_POLICY
from tests.integration.local import fixture_handlers
from tests.integration.local.helpers import HANDLERS

REGION, ACCOUNT = "us-east-1", "123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Given an in-process moto with the local stack's patches."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    installed_before = patches.is_installed()
    patches.install()
    try:
        with mock_aws():
            yield
    finally:
        if not installed_before:
            patches.uninstall()


def test_moto_is_the_pinned_version() -> None:
    assert importlib.metadata.version("moto") == patches.MOTO_VERSION


def test_every_hooked_internal_has_the_expected_signature() -> None:
    # Then the check passes on the installed moto, patched or not
    patches.check_moto_internals()
    with patches.installed():
        patches.check_moto_internals()


def test_uninstall_puts_moto_back_exactly() -> None:
    # Given moto's own methods
    originals = {(owner, name): owner.__dict__.get(name) for owner, name in patches.EXPECTED_SIGNATURES}
    assert not patches.is_installed()
    # When the patches are installed and removed again
    patches.install()
    assert LambdaFunction._invoke_lambda is patches._invoke_lambda
    patches.uninstall()
    # Then every method is the original again and Table has no __deepcopy__ of ours
    assert {(owner, name): owner.__dict__.get(name) for owner, name in originals} == originals
    assert "__deepcopy__" not in vars(Table)


def _table(client: Any, name: str) -> Table:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "G", "GS")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "G", "KeyType": "HASH"},
                    {"AttributeName": "GS", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb_backends[ACCOUNT][REGION].get_table(name)


@pytest.mark.usefixtures("aws")
def test_query_reads_from_the_index_that_every_write_path_maintains() -> None:
    # Given a table, written through put, update, delete and batch write
    client = boto3.client("dynamodb", region_name=REGION)
    table = _table(client, "smoke")
    client.put_item(
        TableName="smoke", Item={"PK": {"S": "p"}, "SK": {"S": "1"}, "G": {"S": "a"}, "GS": {"S": "1"}}
    )
    client.update_item(
        TableName="smoke",
        Key={"PK": {"S": "p"}, "SK": {"S": "2"}},
        UpdateExpression="SET G = :g, GS = :s",
        ExpressionAttributeValues={":g": {"S": "a"}, ":s": {"S": "2"}},
    )
    client.query(
        TableName="smoke", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "p"}}
    )
    client.batch_write_item(
        RequestItems={"smoke": [{"DeleteRequest": {"Key": {"PK": {"S": "p"}, "SK": {"S": "1"}}}}]}
    )

    # When the GSI is queried
    page = client.query(
        TableName="smoke",
        IndexName="GSI1",
        KeyConditionExpression="G = :g",
        ExpressionAttributeValues={":g": {"S": "a"}},
    )

    # Then the answer is right and came from the index moto's Table now carries
    assert [i["SK"]["S"] for i in page["Items"]] == ["2"]
    index = table.__dict__[ddb_index.INDEX_ATTRIBUTE]
    assert isinstance(index, ddb_index.TableIndex)
    assert [(h.value, r.value) for h, r in index.gsis["GSI1"].entries] == [("p", "2")]
    # And moto's storage layout is still what the index reads: items[hash][range] -> Item
    (partition,) = [p for p in table.items.values() if p]
    assert all(item.range_key == key for key, item in partition.items())
    # And a stream shard is a list of records that the transaction rollback truncates
    assert table.stream_shard is not None and isinstance(table.stream_shard.items, list)


@pytest.mark.usefixtures("aws")
def test_moto_objects_that_state_restore_sets_directly() -> None:
    # Given a user and a versioned object
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="smoke", UsernameAttributes=["email"])["UserPool"]["Id"]
    username = cognito.admin_create_user(
        UserPoolId=pool, Username="someone@serval.local", MessageAction="SUPPRESS"
    )["User"]["Username"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="smoke")
    s3.put_bucket_versioning(Bucket="smoke", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="smoke", Key="k", Body=b"x")["VersionId"]

    # Then moto keeps them where and how infra/local/state.py expects
    user = cognitoidp_backends[ACCOUNT][REGION].user_pools[pool].users[username]
    assert isinstance(user, CognitoIdpUser)
    assert {"id", "username", "password", "status", "enabled"} <= set(vars(user))
    assert user.id == username  # with email sign-in the username is the sub
    stored = s3_backends[ACCOUNT]["aws"].get_object("smoke", "k")
    assert stored is not None and stored._version_id == version


@pytest.mark.usefixtures("aws")
def test_moto_runs_its_own_sqs_mappings_synchronously_and_ignores_partial_failures() -> None:
    """Why infra/local/pollers.py exists (docs/decisions.md): if this changes, revisit that decision."""
    # Given moto's own SQS event-source mapping with ReportBatchItemFailures
    fixture_handlers.reset()
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="smoke-esm")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="smoke-role", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README.txt", "in-process")
    lambda_ = boto3.client("lambda", region_name=REGION)
    lambda_.create_function(
        FunctionName="smoke-esm",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler=f"{HANDLERS}.sqs_partial",
        Code={"ZipFile": code.getvalue()},
    )
    lambda_.create_event_source_mapping(
        EventSourceArn=arn, FunctionName="smoke-esm", FunctionResponseTypes=["ReportBatchItemFailures"]
    )

    # When a message the function reports as failed is sent
    sqs.send_message(QueueUrl=url, MessageBody="poison-smoke")

    # Then moto already ran the function inside SendMessage, and deleted the failed message anyway
    assert [d["body"] for d in fixture_handlers.sqs_deliveries] == ["poison-smoke"]
    remaining = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        remaining["ApproximateNumberOfMessages"] == remaining["ApproximateNumberOfMessagesNotVisible"] == "0"
    )
    fixture_handlers.reset()


@pytest.mark.usefixtures("aws")
def test_the_lambda_hook_reads_these_function_attributes() -> None:
    # Given a function created through the API
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="attrs-role", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README.txt", "in-process")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="attrs",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="api.handler.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=29,
        MemorySize=1024,
        Environment={"Variables": {"A": "1"}},
    )
    # Then moto's LambdaFunction holds the configuration the in-process runtime reads
    from moto.awslambda.utils import get_backend

    fn = get_backend(ACCOUNT, REGION).get_function("attrs")
    assert (fn.function_name, fn.handler, fn.run_time) == ("attrs", "api.handler.handler", "python3.13")
    assert (fn.timeout, fn.memory_size, fn.environment_vars) == (29, 1024, {"A": "1"})
    assert fn.function_arn.endswith(":function:attrs") and fn.region == REGION and str(fn.version)


def _big_item(sk: str, kilobytes: int) -> dict[str, Any]:
    return {"PK": {"S": "p"}, "SK": {"S": sk}, "blob": {"S": "x" * (kilobytes * 1024)}}


@pytest.mark.usefixtures("aws")
def test_a_transaction_over_4_mb_is_refused_whole_and_one_under_it_commits() -> None:
    # Given a table
    client = boto3.client("dynamodb", region_name=REGION)
    _table(client, "limits")
    puts = [{"Put": {"TableName": "limits", "Item": _big_item(str(i), 380)}} for i in range(11)]

    # When 11 items of 380 KB (4.1 MB) go in one transaction
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.transact_write_items(TransactItems=puts)

    # Then AWS's answer comes back (a ValidationException) and nothing was written
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert client.scan(TableName="limits")["Count"] == 0
    # And 10 of them (3.7 MB) commit
    client.transact_write_items(TransactItems=puts[:10])
    pages = client.get_paginator("scan").paginate(TableName="limits", Select="COUNT")
    assert sum(page["Count"] for page in pages) == 10


@pytest.mark.usefixtures("aws")
def test_a_batch_write_with_one_item_over_400_kb_writes_nothing() -> None:
    # Given a table and a batch whose middle item is over DynamoDB's 400 KB
    client = boto3.client("dynamodb", region_name=REGION)
    _table(client, "batch")
    batch = [{"PutRequest": {"Item": _big_item(sk, kb)}} for sk, kb in (("a", 1), ("b", 401), ("c", 1))]

    # When it is written
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.batch_write_item(RequestItems={"batch": batch})

    # Then the whole batch is refused, as AWS refuses it (moto alone writes "a" first)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert client.scan(TableName="batch")["Count"] == 0


@pytest.mark.usefixtures("aws")
def test_moto_refuses_an_item_over_400_kb_in_put_and_in_a_transaction() -> None:
    # Given a table (moto's own item limit, which the limits patch relies on)
    client = boto3.client("dynamodb", region_name=REGION)
    _table(client, "items")
    for write in (
        lambda: client.put_item(TableName="items", Item=_big_item("a", 401)),
        lambda: client.transact_write_items(
            TransactItems=[{"Put": {"TableName": "items", "Item": _big_item("b", 401)}}]
        ),
    ):
        # When an item over 400 KB is written
        with pytest.raises(client.exceptions.ClientError) as refused:
            write()
        # Then it is a ValidationException and nothing is stored
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert client.scan(TableName="items")["Count"] == 0


def test_the_limits_install_alone_and_come_off_again() -> None:
    # Given moto without the local stack's patches
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.__dict__["transact_write_items"]
    assert not patches.is_installed()
    # When only the size limits are installed (as the in-process test fixture does), then removed
    with patches.limits_installed():
        assert DynamoHandler.__dict__["transact_write_items"] is patches._transact_size_limit
        patches.check_moto_internals()
    # Then moto is as it was
    assert DynamoHandler.__dict__["transact_write_items"] is original
