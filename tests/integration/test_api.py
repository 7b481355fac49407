"""API routes in-process against moto: validation, errors, pagination, role checks, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serval.domain.actor import Actor
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import join

LABELS = {
    "controls": [
        {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "square"}]},
        {"name": "objects", "type": "bbox", "classes": [{"name": "circle"}, {"name": "square"}]},
    ]
}


def _create_project(actor: Actor, media: list[str] | None = None) -> str:
    response = call(
        "POST",
        "/projects",
        actor,
        {"name": "Shapes", "media_types": media or ["image", "text"], "label_config": LABELS},
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def test_project_lifecycle_create_list_get_update_archive(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    listed = call("GET", "/projects?limit=10", admin)
    assert [p["project_id"] for p in listed.body["items"]] == [project_id]
    changed = call(
        "PATCH",
        f"/projects/{project_id}",
        admin,
        {"description": "new", "label_config": {**LABELS, "instructions": "be precise"}},
    )
    assert changed.status == 200
    assert changed.body["description"] == "new"
    assert changed.body["label_config"]["version"] == 2
    archived = call("POST", f"/projects/{project_id}/archive", admin)
    assert archived.body["status"] == "archived"
    refused = call("PATCH", f"/projects/{project_id}", admin, {"name": "x"})
    assert refused.status == 409
    assert refused.body["error"]["code"] == "project_archived"


def test_only_admins_and_managers_create_projects(aws: Aws, annotator: Actor) -> None:
    response = call(
        "POST", "/projects", annotator, {"name": "x", "media_types": ["image"], "label_config": LABELS}
    )
    assert response.status == 403
    assert response.body["error"]["code"] == "forbidden"


def test_missing_claims_are_unauthorized(aws: Aws) -> None:
    response = call("GET", "/projects", None)
    assert response.status == 401
    assert response.body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"name": "", "media_types": ["image"], "label_config": LABELS}, "validation_failed", 422),
        ({"name": "x", "media_types": ["image"], "label_config": {"controls": []}}, "validation_failed", 422),
        ({"name": "x", "media_types": ["audio"], "label_config": LABELS}, "validation_failed", 422),
        ({"name": 5, "media_types": "image"}, "validation_failed", 422),
    ],
)
def test_invalid_bodies_get_422_with_machine_readable_details(
    aws: Aws, admin: Actor, body: Any, code: str, status: int
) -> None:
    response = call("POST", "/projects", admin, body)
    assert response.status == status
    assert response.body["error"]["code"] == code
    assert response.body["error"]["details"]


def test_malformed_json_gets_400(aws: Aws, admin: Actor) -> None:
    response = call("POST", "/projects", admin, raw_body="{nope")
    assert response.status == 400
    assert response.body["error"]["code"] == "malformed_json"


def test_unknown_ids_get_404(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    assert call("GET", "/projects/p_unknown", admin).status == 404
    assert call("GET", f"/projects/{project_id}/tasks/t_unknown", admin).body["error"]["code"] == "not_found"
    assert call("GET", "/no/such/route", admin).body["error"]["code"] == "route_not_found"


def test_bulk_create_list_filter_paginate(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    items = [
        {"data": {"text": f"t{i}"}, "tags": ["even"] if i % 2 == 0 else [], "priority": i} for i in range(25)
    ]
    created = call("POST", f"/projects/{project_id}/tasks", admin, items)
    assert created.status == 201, created.body
    assert created.body["created"] == 25
    seen: list[str] = []
    cursor = None
    while True:
        page = call(
            "GET", f"/projects/{project_id}/tasks?limit=10" + (f"&cursor={cursor}" if cursor else ""), admin
        )
        seen += [t["task_id"] for t in page.body["items"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(created.body["task_ids"])
    tagged = call("GET", f"/projects/{project_id}/tasks?tag=even&limit=100", admin)
    assert len(tagged.body["items"]) == 13
    by_status = call("GET", f"/projects/{project_id}/tasks?status=new&media_type=text", admin)
    assert len(by_status.body["items"]) == 25
    none = call("GET", f"/projects/{project_id}/tasks?has_prediction=true", admin)
    assert none.body["items"] == []


def test_bulk_create_is_idempotent_with_a_key(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    items = [{"data": {"text": "a"}}, {"data": {"text": "b"}}]
    first = call("POST", f"/projects/{project_id}/tasks", admin, items, headers={"Idempotency-Key": "k1"})
    again = call("POST", f"/projects/{project_id}/tasks", admin, items, headers={"Idempotency-Key": "k1"})
    assert first.body["task_ids"] == again.body["task_ids"]
    assert again.body["replayed"] is True
    listed = call("GET", f"/projects/{project_id}/tasks", admin)
    assert len(listed.body["items"]) == 2


def test_bulk_create_rejects_references_into_another_project(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    other = _create_project(admin)
    bucket = aws.env["DATA_BUCKET"]
    response = call(
        "POST",
        f"/projects/{project_id}/tasks",
        admin,
        [{"data": {"image": f"s3://{bucket}/projects/{other}/x.png"}}],
    )
    assert response.status == 422
    assert response.body["error"]["details"][0]["index"] == 0


@pytest.mark.parametrize(
    "data",
    [
        {"text": ""},
        {"text": "   \n"},
        {"image": "../../etc/passwd"},
        {"image": "s3://{exports}/audit/x.png"},
    ],
)
def test_bulk_create_refuses_empty_text_and_escaping_references(
    aws: Aws, admin: Actor, data: dict[str, str]
) -> None:
    # Given one good task and one with empty text or a reference that escapes the project
    project_id = _create_project(admin)
    bad = {k: v.format(exports=aws.env["EXPORT_BUCKET"]) for k, v in data.items()}
    response = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "ok"}}, {"data": bad}])

    # Then the call is a 422 naming the bad item, and nothing is created
    assert response.status == 422
    assert [d["index"] for d in response.body["error"]["details"]] == [1]
    assert call("GET", f"/projects/{project_id}/tasks", admin).body["items"] == []


def test_cursor_from_another_project_is_refused(aws: Aws, admin: Actor) -> None:
    a, b = _create_project(admin), _create_project(admin)
    call("POST", f"/projects/{a}/tasks", admin, [{"data": {"text": str(i)}} for i in range(3)])
    cursor = call("GET", f"/projects/{a}/tasks?limit=1", admin).body["next_cursor"]
    response = call("GET", f"/projects/{b}/tasks?cursor={cursor}", admin)
    assert response.status == 422
    assert response.body["error"]["code"] == "invalid_cursor"


def test_patch_and_delete_task_keep_counts_and_audit(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    [task_id] = call(
        "POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "x"}, "tags": ["a"]}]
    ).body["task_ids"]
    patched = call("PATCH", f"/projects/{project_id}/tasks/{task_id}", admin, {"tags": ["b"], "priority": 7})
    assert patched.body["tags"] == ["b"]
    assert call("GET", f"/projects/{project_id}/tasks?tag=a", admin).body["items"] == []
    assert len(call("GET", f"/projects/{project_id}/tasks?tag=b", admin).body["items"]) == 1
    assert call("DELETE", f"/projects/{project_id}/tasks/{task_id}", admin).status == 204
    assert call("GET", f"/projects/{project_id}/tasks/{task_id}", admin).status == 404
    audit = aws.ddb.query(
        TableName=aws.env["AUDIT_TABLE"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PROJECT#{project_id}"}},
    )["Items"]
    actions = sorted(i["action"]["S"] for i in audit)
    assert actions == sorted(["project.create", "import.complete", "task.update", "task.delete"])
    from serval.adapters import dynamo

    assert sum(dynamo.read_counters(project_id).values()) == 0


def test_annotations_are_validated_against_the_label_config(aws: Aws, admin: Actor, annotator: Actor) -> None:
    project_id = _create_project(admin)
    join(project_id, annotator, "annotator")
    [task_id] = call(
        "POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "hello world"}}]
    ).body["task_ids"]
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    assert queue.next_task(project_id, annotator).task is not None  # the route takes the lease holder's
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    bad = call(
        "POST",
        url,
        annotator,
        {"results": [{"control": "shape", "type": "classification", "labels": ["hexagon"]}]},
    )
    assert bad.status == 422
    (problem,) = bad.body["error"]["details"]
    assert "unknown class" in problem["message"]
    assert problem["location"] == ["body", "results", 0, "labels", 0] and problem["control"] == "shape"
    out_of_bounds = call(
        "POST",
        url,
        annotator,
        {
            "results": [
                {
                    "control": "objects",
                    "type": "bbox",
                    "boxes": [{"label": "circle", "x": 0.8, "y": 0.1, "w": 0.5, "h": 0.1}],
                }
            ]
        },
    )
    assert out_of_bounds.status == 422
    good = call(
        "POST",
        url,
        annotator,
        {
            "results": [{"control": "shape", "type": "classification", "labels": ["circle"]}],
            "lead_time_s": 3.5,
        },
    )
    assert good.status == 201, good.body
    listed = call("GET", url, annotator)
    assert [a["annotation_id"] for a in listed.body["items"]] == [good.body["annotation_id"]]
    one = call("GET", f"{url}/{good.body['annotation_id']}", annotator)
    assert one.body["author"] == annotator.user_id
    assert call("GET", f"/projects/{project_id}/tasks/{task_id}", annotator).body["annotation_count"] == 1


def test_presigned_upload_is_restricted_to_the_project_prefix(aws: Aws, admin: Actor) -> None:
    project_id = _create_project(admin)
    ok = call(
        "POST",
        f"/projects/{project_id}/uploads",
        admin,
        {"filename": "batch1/a.png", "content_type": "image/png"},
    )
    assert ok.status == 201
    assert ok.body["key"] == f"projects/{project_id}/batch1/a.png"
    escape = call("POST", f"/projects/{project_id}/uploads", admin, {"filename": "../x/a.png"})
    assert escape.status == 422
    multi = call(
        "POST",
        f"/projects/{project_id}/uploads",
        admin,
        {"filename": "big.mp4", "content_type": "video/mp4", "size": 300 * 1024 * 1024},
    )
    assert multi.status == 422  # the project takes image and text only
    manifest = call(
        "POST", f"/projects/{project_id}/uploads", admin, {"filename": "m.jsonl", "size": 200 * 1024 * 1024}
    )
    assert manifest.body["kind"] == "manifest"
    assert len(manifest.body["part_urls"]) == 4


def test_openapi_document_is_served_without_auth(aws: Aws) -> None:
    response = call("GET", "/openapi.json", None)
    assert response.status == 200
    assert "/projects/{project_id}/tasks" in response.body["paths"]


def test_authorization_is_decided_before_the_body_is_validated(aws: Aws, annotator: Actor) -> None:
    # Given an annotator sending an invalid body to a managers-only route
    response = call("POST", "/projects", annotator, {"name": ""})
    # Then the answer is 403, and it reveals nothing about the body
    assert response.status == 403
    assert "name" not in json.dumps(response.body)
    # And without a token the answer is 401
    assert call("POST", "/projects", None, {"name": ""}).status == 401
