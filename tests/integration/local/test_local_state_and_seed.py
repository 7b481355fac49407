"""Local state survives a restart; seeding creates the demo users and the demo project through the real paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.gateway import LocalApiGateway
from infra.local.moto_server import MotoServer
from infra.local.resources import LocalResources, connect_event_sources, provision
from infra.local.seed import DEMO_USERS, id_token, seed, suitable_manifest
from infra.local.state import LocalState
from infra.spec import ServalSpec
from tests.integration.local.fixture_handlers import SEED_CALLS
from tests.integration.local.helpers import create_function
from tests.ports import free_port

PASSWORD = "Serval-Restore-2026!"


def scan(table: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def claims_of(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def given_some_state(resources: LocalResources) -> dict[str, Any]:
    dynamodb, s3, cognito = boto3.client("dynamodb"), boto3.client("s3"), boto3.client("cognito-idp")
    tasks = resources.table_names["tasks"]
    for i in range(30):
        item: dict[str, Any] = {
            "PK": {"S": "PROJECT#p1"},
            "SK": {"S": f"TASK#{i:03d}"},
            "GSI1PK": {"S": "PROJECT#p1#STATUS#new"},
            "GSI1SK": {"S": f"2026-11-28#{i:03d}"},
            "meta": {"M": {"tags": {"L": [{"S": "é"}, {"N": "1.5"}]}, "raw": {"B": b"\x00\xff"}}},
        }
        dynamodb.put_item(TableName=tasks, Item=item)
    bucket = resources.bucket_names["data"]
    version = s3.put_object(
        Bucket=bucket,
        Key="projects/p1/a b+c.png",
        Body=b"\x89PNG",
        ContentType="image/png",
        Metadata={"by": "me"},
    )["VersionId"]
    pool = resources.user_pool_id
    cognito.admin_create_user(
        UserPoolId=pool,
        Username="kept@serval.local",
        UserAttributes=[{"Name": "email", "Value": "kept@serval.local"}, {"Name": "name", "Value": "Kept"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username="kept@serval.local", Password=PASSWORD, Permanent=True
    )
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="kept@serval.local", GroupName="reviewer")
    sub = cognito.admin_get_user(UserPoolId=pool, Username="kept@serval.local")["Username"]
    return {"items": scan(tasks), "version": version, "sub": sub}


def test_state_round_trip_restores_items_objects_and_users_without_side_effects(
    moto_server: MotoServer, spec: ServalSpec, tmp_path: Path
) -> None:
    # Given items, a versioned object and a user, saved on shutdown
    resources = connect_event_sources(spec, provision(spec, moto_server.endpoint_url))
    before = given_some_state(resources)
    saved = LocalState(tmp_path).save(spec, resources)
    assert saved.items["tasks"] == 30 and saved.objects["data"] == 1 and saved.users == 1

    # When moto starts from nothing and the state is restored between provisioning and connecting
    moto_server.reset()
    fresh = provision(spec, moto_server.endpoint_url)
    restored = LocalState(tmp_path).restore(spec, fresh)
    fresh = connect_event_sources(spec, fresh)

    # Then the items are back, byte for byte, and the GSI answers from them
    assert restored == saved
    assert scan(fresh.table_names["tasks"]) == before["items"]
    page = boto3.client("dynamodb").query(
        TableName=fresh.table_names["tasks"],
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :s",
        ExpressionAttributeValues={":s": {"S": "PROJECT#p1#STATUS#new"}},
        ScanIndexForward=False,
        Limit=2,
    )
    assert [i["SK"]["S"] for i in page["Items"]] == ["TASK#029", "TASK#028"]
    # And the object with its version id, content type and metadata
    obj = boto3.client("s3").get_object(
        Bucket=fresh.bucket_names["data"], Key="projects/p1/a b+c.png", VersionId=before["version"]
    )
    assert obj["Body"].read() == b"\x89PNG"
    assert obj["ContentType"] == "image/png" and obj["Metadata"] == {"by": "me"}
    # And the user with the same sub, groups and password
    cognito = boto3.client("cognito-idp")
    user = cognito.admin_get_user(UserPoolId=fresh.user_pool_id, Username="kept@serval.local")
    assert user["Username"] == before["sub"]
    assert {"Name": "name", "Value": "Kept"} in user["UserAttributes"]
    token = cognito.initiate_auth(
        ClientId=fresh.user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "kept@serval.local", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    assert claims_of(token)["sub"] == before["sub"]
    assert claims_of(token)["cognito:groups"] == ["reviewer"]
    # And restoring triggered nothing: no stream records, no upload event for the restored object
    streams = boto3.client("dynamodbstreams")
    arn = fresh.stream_arns["tasks"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    assert streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"] == []
    queued = boto3.client("sqs").receive_message(QueueUrl=fresh.queue_urls["ingest"], MaxNumberOfMessages=10)
    assert all(json.loads(m["Body"]).get("Event") == "s3:TestEvent" for m in queued.get("Messages", []))
    moto_server.reset()


def secret_values(spec: ServalSpec) -> dict[str, str]:
    client = boto3.client("secretsmanager")
    return {
        secret_id: client.get_secret_value(SecretId=secret.name)["SecretString"]
        for secret_id, secret in spec.secrets.items()
    }


def test_state_round_trip_keeps_every_secret_value(
    moto_server: MotoServer, spec: ServalSpec, tmp_path: Path
) -> None:
    # Given the spec's secrets (the audit seal key among them) with the random values provisioning gave them
    assert "audit-seal" in spec.secrets
    resources = provision(spec, moto_server.endpoint_url)
    before = secret_values(spec)
    saved = LocalState(tmp_path).save(spec, resources)
    assert saved.secrets == len(spec.secrets)

    # When moto starts from nothing, provisioning draws new random values, and the state is restored
    moto_server.reset()
    fresh = provision(spec, moto_server.endpoint_url)
    drawn = secret_values(spec)
    restored = LocalState(tmp_path).restore(spec, fresh)

    # Then every secret has its saved value again, so seals made before the restart still verify
    assert drawn != before
    assert restored.secrets == len(spec.secrets)
    assert secret_values(spec) == before
    moto_server.reset()


def test_seeding_creates_users_and_the_demo_project_through_the_gateway_and_s3(
    moto_server: MotoServer, spec: ServalSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shared datasets folder with three shape images and their ground truth
    shapes = tmp_path / "datasets" / "images" / "shapes"
    shapes.mkdir(parents=True)
    for i in range(3):
        (shapes / f"shapes_{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([i]))
    (shapes / "boxes.jsonl").write_text('{"file": "shapes_000.png"}\n')
    monkeypatch.setenv("SERVAL_SHARED_DIR", str(tmp_path))
    # Given the resources, and a stand-in API behind the local gateway (the real one may not exist yet)
    resources = connect_event_sources(spec, provision(spec, moto_server.endpoint_url))
    create_function("seed-api", "fake_projects_api", environment=spec.functions["api"].environment)
    gateway = LocalApiGateway(
        spec.api, resources, function_name="seed-api", allowed_origins=("*",), port=free_port()
    )
    gateway.start()
    messages: list[str] = []
    try:
        # When seeding runs on an empty state, twice
        project_id = seed(spec, resources, gateway.url, with_project=True, say=messages.append, timeout_s=20)
        seed(spec, resources, gateway.url, with_project=False, say=messages.append)
    finally:
        gateway.stop()

    # Then the five demo users exist once each, sign in, and carry their group (the viewer has none)
    users = boto3.client("cognito-idp").list_users(UserPoolId=resources.user_pool_id)["Users"]
    assert len(users) == len(DEMO_USERS) == 5
    for user in DEMO_USERS:
        assert claims_of(id_token(resources, user)).get("cognito:groups") == (
            [user.role] if user.role else None
        )
    # And each was recorded in the directory, and every non-admin got their demo project role
    assert [c[0] for c in SEED_CALLS if c[1].startswith("/users/")] == ["GET"] * 5
    granted = sorted(c[2]["role"] for c in SEED_CALLS if c[1].endswith("/members"))
    assert granted == ["annotator", "manager", "reviewer", "viewer"]
    assert not any("could not" in m for m in messages)
    # And the project was created as the admin, and the shapes images were uploaded under its prefix
    assert project_id == "demo-1"
    listed = boto3.client("s3").list_objects_v2(
        Bucket=resources.bucket_names["data"], Prefix="projects/demo-1/"
    )
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert keys == [f"projects/demo-1/images/shapes/shapes_{i:03d}.png" for i in range(3)]
    assert "seed: 3 tasks ready" in messages
    moto_server.reset()


def test_a_manifest_is_suitable_only_if_every_record_names_an_uploaded_file_of_the_project_type(
    tmp_path: Path,
) -> None:
    # Given manifests: one naming only uploaded images, one naming a missing one, one of another type
    def write(name: str, records: list[dict[str, Any]]) -> None:
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in records))

    image = {"id": "1", "type": "image", "data": {"image": "images/shapes/shapes_000.png"}}
    write("b-good.jsonl", [image])
    write("a-missing.jsonl", [image, {"id": "2", "type": "image", "data": {"image": "images/x.png"}}])
    write("c-text.jsonl", [{"id": "3", "type": "text", "data": {"text": "hello"}}])

    # When one is chosen for an image project with the shapes uploaded
    chosen = suitable_manifest(tmp_path, {"image"}, {"images/shapes/shapes_000.png"})

    # Then only the manifest whose every record fits qualifies
    assert chosen == tmp_path / "b-good.jsonl"
