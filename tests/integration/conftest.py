"""In-process moto (``mock_aws``) with every table, bucket and queue built from infra.spec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import config, spec
from serval.adapters import clients, dynamo_models
from serval.domain.actor import Actor

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Aws:
    spec: spec.ServalSpec
    env: dict[str, str]
    s3: Any
    sqs: Any
    ddb: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Given a fresh moto account with Serval's resources created from the spec."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        _forget_clients()
        the_spec = spec.build(config.load("local"), ACCOUNT, REGION)
        env = dict(the_spec.functions["ingest"].environment) | _create(the_spec)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Aws(
            spec=the_spec,
            env=env,
            s3=boto3.client("s3", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            ddb=boto3.client("dynamodb", region_name=REGION),
        )
        _forget_clients()


def _forget_clients() -> None:
    """Drop cached SDK clients and pynamodb connections (another test may have used a server)."""
    clients.reset()
    dynamo_models.tasks_models.cache_clear()
    dynamo_models.audit_models.cache_clear()


@pytest.fixture
def admin() -> Actor:
    return Actor(
        user_id="u-admin", username="admin", groups=("admin",), request_id="req-1", source_ip="127.0.0.1"
    )


@pytest.fixture
def annotator() -> Actor:
    return Actor(user_id="u-annotator", username="annotator", groups=("annotator",), request_id="req-2")


def _create(s: spec.ServalSpec) -> dict[str, str]:
    """Tables, buckets and queues of the spec; returns the runtime references (queue URLs)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    for table in s.tables.values():
        ddb.create_table(
            TableName=table.name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in table.key_attributes],
            KeySchema=[
                {"AttributeName": table.pk, "KeyType": "HASH"},
                {"AttributeName": table.sk, "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": i.name,
                    "KeySchema": [
                        {"AttributeName": i.pk, "KeyType": "HASH"},
                        {"AttributeName": i.sk, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for i in table.indexes
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in s.buckets.values():
        s3.create_bucket(Bucket=bucket.name)
    sqs = boto3.client("sqs", region_name=REGION)
    urls = {q.id: sqs.create_queue(QueueName=q.name)["QueueUrl"] for q in s.queues.values()}
    dlqs = {q.id: sqs.create_queue(QueueName=q.dlq_name)["QueueUrl"] for q in s.queues.values()}
    return {"INGEST_QUEUE_URL": urls["ingest"], "INGEST_DLQ_URL": dlqs["ingest"]}
