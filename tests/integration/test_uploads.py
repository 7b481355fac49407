"""Uploads through the API, then ingest, on moto: audited as the user, and attributed to them.

The API signs the uploader into the presigned PUT (x-amz-meta-* headers in X-Amz-SignedHeaders),
so S3 refuses the PUT if a client drops or changes them; ingest reads them back with HeadObject.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from serval.domain.actor import Actor
from serval.logic import ingest
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join

LABELS = {"controls": [{"name": "label", "type": "classification", "classes": [{"name": "a"}]}]}
API_ROLE = "AROAEXAMPLEAPIROLE:serval-local-api"


@pytest.fixture
def manager(admin: Actor) -> tuple[Actor, str]:
    """A project manager (a global manager, member of a new image+text project)."""
    who = Actor(user_id="u-uploader", username="uploader", groups=("manager",), request_id="req-up")
    enrol(who)
    created = call(
        "POST", "/projects", admin, {"name": "U", "media_types": ["image", "text"], "label_config": LABELS}
    )
    project_id = str(created.body["project_id"])
    join(project_id, who, "manager")
    return who, project_id


def _event(aws: Aws, key: str) -> str:
    """The S3 notification for ``key``: written by the API's role, as every presigned PUT is."""
    head = aws.s3.head_object(Bucket=aws.env["DATA_BUCKET"], Key=key)
    record = {
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": f"AWS:{API_ROLE}"},
        "s3": {
            "bucket": {"name": aws.env["DATA_BUCKET"]},
            "object": {"key": key, "eTag": head["ETag"].strip('"'), "size": head["ContentLength"]},
        },
    }
    return json.dumps({"Records": [record]})


def _audit(aws: Aws, project_id: str) -> list[dict[str, Any]]:
    items = aws.ddb.query(
        TableName=aws.env["AUDIT_TABLE"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PROJECT#{project_id}"}},
    )["Items"]
    return [
        {k: v.get("S") for k, v in item.items() if k in {"action", "actor_id", "actor_role", "target_id"}}
        | {"actor_project_role": item.get("actor_project_role", {}).get("S")}
        for item in items
    ]


def _forever() -> float:
    return 900.0


def test_a_presigned_manifest_upload_is_audited_and_its_import_is_the_uploaders(
    aws: Aws, manager: tuple[Actor, str]
) -> None:
    who, project_id = manager
    # Given an upload URL asked for by the manager
    answer = call("POST", f"/projects/{project_id}/uploads", who, {"filename": "batch/m.jsonl"})
    assert answer.status == 201, answer.body
    upload = answer.body
    signed = parse_qs(urlsplit(upload["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"x-amz-meta-uploaded-by", "x-amz-meta-uploaded-by-role"} <= set(signed)
    assert upload["headers"]["x-amz-meta-uploaded-by"] == who.user_id

    # When the client PUTs the manifest with the signed headers and ingest picks it up
    manifest = "\n".join(json.dumps({"data": {"text": f"line {i}"}}) for i in range(3))
    put = requests.put(upload["url"], data=manifest.encode(), headers=upload["headers"], timeout=10)
    assert put.status_code == 200, put.text
    [outcome] = ingest.process_message(_event(aws, upload["key"]), "m1", _forever)

    # Then the import and its records are the manager's, not the API role's or the pipeline's
    assert outcome.kind == "import_completed"
    record = call("GET", f"/projects/{project_id}/imports/{outcome.detail['import_id']}", who).body
    assert record["created_by"] == who.user_id
    trail = {r["action"]: r for r in _audit(aws, project_id)}
    for action in ("upload.create", "import.start", "import.complete"):
        assert trail[action]["actor_id"] == who.user_id, trail[action]
        assert trail[action]["actor_role"] == "manager"
        assert trail[action]["actor_project_role"] == "manager"
    assert trail["upload.create"]["target_id"] == upload["key"]


def test_a_multipart_media_upload_is_audited_at_start_and_completion_and_its_task_is_the_uploaders(
    aws: Aws, manager: tuple[Actor, str]
) -> None:
    who, project_id = manager
    # Given a multipart upload of an image, asked for by the manager
    url = f"/projects/{project_id}/uploads"
    upload = call(
        "POST", url, who, {"filename": "big.png", "content_type": "image/png", "multipart": True, "size": 10}
    ).body
    (part_url,) = upload["part_urls"]

    # When the part is PUT, the upload completed through the API, and ingest runs
    part = requests.put(part_url, data=b"\x89PNG fake", timeout=10)
    assert part.status_code == 200, part.text
    parts = [{"part_number": 1, "etag": part.headers["ETag"].strip('"')}]
    done = call(
        "POST",
        f"{url}/complete",
        who,
        {"key": upload["key"], "upload_id": upload["upload_id"], "parts": parts},
    )
    assert done.status == 200, done.body
    [outcome] = ingest.process_message(_event(aws, upload["key"]), "m1", _forever)

    # Then start, completion and the task's creation are recorded as the manager's
    assert outcome.kind == "task_created"
    actors = {r["action"]: r["actor_id"] for r in _audit(aws, project_id)}
    assert [actors[a] for a in ("upload.create", "upload.complete", "task.create")] == [who.user_id] * 3


def test_an_object_written_outside_serval_is_the_pipelines_on_behalf_of_its_writer(
    aws: Aws, manager: tuple[Actor, str]
) -> None:
    # Given a manifest copied straight into the bucket (no upload URL, no uploader metadata)
    _, project_id = manager
    key = f"projects/{project_id}/synced.jsonl"
    aws.s3.put_object(Bucket=aws.env["DATA_BUCKET"], Key=key, Body=b'{"source": "x"}')

    # When it is ingested / Then its import is attributed to the pipeline, naming the writer
    [outcome] = ingest.process_message(_event(aws, key), "m1", _forever)
    trail = {r["action"]: r for r in _audit(aws, project_id)}
    assert outcome.kind == "import_completed"
    assert trail["import.start"]["actor_id"] == "system:ingest"
