"""What the browser's workspace reads, on the stack `make dev` starts, with real ID tokens through
the local gateway: an upload from the web app's origin, its presigned media URL on the lease
(fetched from the local S3 endpoint under CORS), a hostile manifest line, an expired token, and a
rejected task's comment and history after the real workflow sent it back."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from moto.utilities.utils import load_resource

from tests.e2e.conftest import DevStack, aws_client, demo_token, http, wait_for
from tests.e2e.flows import POSITIVE
from tests.e2e.flows import new_flow as _flow

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
LABELS = {"controls": [{"name": "kind", "type": "classification", "classes": [{"name": "cat"}]}]}


def _raw(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> Any:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        return urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as error:
        return error


def origin(stack: DevStack) -> str:
    """The web app's origin: the stack's gateway (the buckets' CORS follows its port)."""
    return stack.api_url


def _upload(
    stack: DevStack, token: str, project_id: str, filename: str, body: bytes, content_type: str
) -> None:
    """Upload a file as the web app does: a presigned PUT sent from its origin."""
    request = {"filename": filename, "content_type": content_type, "size": len(body)}
    status, upload = http(stack, "POST", f"/projects/{project_id}/uploads", token, request)
    assert status == 201 and upload["method"] == "PUT", upload
    answer = _raw(upload["url"], "PUT", upload["headers"] | {"Origin": origin(stack)}, body)
    assert answer.status == 200, answer.read()
    assert answer.headers["Access-Control-Allow-Origin"] == origin(stack)


def _expired(token: str) -> str:
    """The same ID token's claims, signed with the pool's key, but expired an hour ago."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    key = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims | {"iat": now - 7200, "exp": now - 3600}, key)


def test_an_uploaded_image_is_shown_through_its_presigned_url_and_hostile_lines_are_refused(
    dev_stack: DevStack,
) -> None:
    # Given an image project of the demo manager, with the demo annotator as a member
    manager, annotator = demo_token(dev_stack, "manager"), demo_token(dev_stack, "annotator")
    body = {"name": "Workspace media", "media_types": ["image"], "label_config": LABELS}
    status, project = http(dev_stack, "POST", "/projects", manager, body)
    assert status == 201, project
    project_id = project["project_id"]
    _, me = http(dev_stack, "GET", "/me", annotator)
    member = {"user_id": me["user_id"], "role": "annotator"}
    assert http(dev_stack, "POST", f"/projects/{project_id}/members", manager, member)[0] == 201

    # When the manager's browser uploads an image, and a manifest with lines that point elsewhere
    _upload(dev_stack, manager, project_id, "cat.png", PNG, "image/png")
    bucket = next(
        b["Name"] for b in aws_client(dev_stack, "s3").list_buckets()["Buckets"] if "-data-" in b["Name"]
    )
    hostile = [
        {"data": {"image": f"s3://{bucket}/projects/p-someone-else/secret.png"}},
        {"data": {"image": "../p-someone-else/secret.png"}},
    ]
    manifest = "\n".join(json.dumps(line) for line in hostile).encode()
    _upload(dev_stack, manager, project_id, "hostile.jsonl", manifest, "application/x-ndjson")

    # Then the manifest's lines become import errors, not tasks, and the image becomes the one task
    def manifest_done() -> dict[str, Any] | None:
        items = http(dev_stack, "GET", f"/projects/{project_id}/imports", manager)[1]["items"]
        return next((i for i in items if i["status"] != "running"), None)

    record = wait_for(manifest_done, what="the manifest's import to finish")
    assert (record["tasks_created"], record["errors"]) == (0, 2), record

    def one_task() -> list[dict[str, Any]] | None:
        items = http(dev_stack, "GET", f"/projects/{project_id}/tasks", manager)[1]["items"]
        return items or None

    [task] = wait_for(one_task, what="the image's task")
    assert task["data"]["image"]["key"] == f"projects/{project_id}/cat.png"

    # When the annotator's workspace leases the next task (once its workflow queued it)
    def leased() -> dict[str, Any] | None:
        status, lease = http(dev_stack, "POST", f"/projects/{project_id}/next", annotator)
        assert status == 200, lease
        return lease["task"]

    leased_task = wait_for(leased, what="the task to be queued")
    assert leased_task["task_id"] == task["task_id"]

    # Then its image URL points at the local S3 endpoint the browser reaches
    link = leased_task["media"]["image"]
    assert link["url"].startswith(dev_stack.endpoint_url + "/")
    assert link["expires_at"] > time.time()
    # And the browser's fetch from the web app's origin gets the image, under the bucket's CORS
    preflight = _raw(
        link["url"],
        "OPTIONS",
        {"Origin": origin(dev_stack), "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Origin"] == origin(dev_stack)
    fetched = _raw(link["url"], headers={"Origin": origin(dev_stack)})
    assert fetched.status == 200 and fetched.read() == PNG
    assert fetched.headers["Access-Control-Allow-Origin"] == origin(dev_stack)
    # And another origin is not allowed to read it from a page
    foreign = _raw(
        link["url"], "OPTIONS", {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    # (S3 refuses the preflight, so the browser never sends the GET; moto's server echoes the
    # origin on every answer, so the status is what tells)
    assert foreign.status == 403

    # When the same calls come with an expired ID token of the same user
    stale = _expired(annotator)
    # Then the gateway refuses them before the API: no lease, no URL
    for method, path in (
        ("POST", f"/projects/{project_id}/next"),
        ("GET", f"/projects/{project_id}/tasks/{task['task_id']}"),
    ):
        status, refused = http(dev_stack, method, path, stale)
        assert status == 401 and refused["error"]["code"] == "unauthorized", refused
    # And a stranger's valid token learns nothing of the task
    reviewer = demo_token(dev_stack, "reviewer")
    assert http(dev_stack, "GET", f"/projects/{project_id}/tasks/{task['task_id']}", reviewer)[0] == 404


def test_a_rejected_task_comes_back_with_the_reviewers_comment_and_its_history(dev_stack: DevStack) -> None:
    # Given a task labelled by the annotator and rejected with a comment by the reviewer
    flow = _flow(dev_stack, "Rework comment", {"max_rework_rounds": 2}, "great product")
    flow.wait_status("queued", "the task to be queued")
    flow.label(flow.annotator)
    flow.wait_status("in_review", "the task to go to review")
    flow.review({"decision": "reject", "comment": "sentiment is negative"})

    # When the workflow sends it back and the annotator leases it again
    flow.wait_status("queued", "the rework round to queue the task")
    status, lease = flow.api.call(flow.annotator, "POST", f"/projects/{flow.pid}/next")

    # Then the lease carries the reviewer's comment and the rejected results
    assert status == 200 and lease["task"]["task_id"] == flow.tid, lease
    rework = lease["task"]["rework"]
    assert rework["comment"] == "sentiment is negative"
    assert rework["reviewer"] == flow.api.ids[flow.reviewer]
    [rejected] = rework["rejected_annotations"]
    assert rejected["results"] == POSITIVE["results"]

    # And the reviewer reads the task's history, with the rejection in it
    status, history = flow.api.call(flow.reviewer, "GET", f"{flow.task_path}/history?order=asc")
    assert status == 200, history
    actions = [item["action"] for item in history["items"]]
    assert actions.index("task.submit") < actions.index("review.reject") < len(actions) - 1
    # And the annotator may not read it
    assert flow.api.call(flow.annotator, "GET", f"{flow.task_path}/history")[0] == 403
