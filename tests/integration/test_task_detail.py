"""What the workspace reads of a task through the API on moto: presigned media URLs (only for
readers of the task, only for keys in its project's prefix), the rework's review, the history."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from bench.metering import metered
from serval import keys
from serval.domain.actor import Actor
from serval.logic import ingest, queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import GOOD, Workflow, lease, members, person, steps, submit

__all__ = ["steps"]  # the fixture, imported for this module

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}


def _project(admin: Actor, media: str = "image") -> str:
    body = {"name": "M", "media_types": [media], "label_config": LABELS}
    response = call("POST", "/projects", admin, body)
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _put(aws: Aws, key: str, body: bytes = PNG) -> None:
    aws.s3.put_object(Bucket=aws.env["DATA_BUCKET"], Key=key, Body=body, ContentType="image/png")


def _image_task(aws: Aws, admin: Actor, project_id: str, name: str = "cat.png") -> str:
    """A queued task whose image is an object in the project's prefix."""
    _put(aws, f"{keys.project_data_prefix(project_id)}images/{name}")
    response = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"image": f"images/{name}"}}])
    assert response.status == 201, response.body
    (task_id,) = response.body["task_ids"]
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    return str(task_id)


def _detail(project_id: str, task_id: str, who: Actor) -> Any:
    return call("GET", f"/projects/{project_id}/tasks/{task_id}", who)


def _repoint(aws: Aws, project_id: str, task_id: str, data: dict[str, Any]) -> None:
    """Rewrite a stored task's data behind the API's back (a corrupted or hand-edited item)."""
    aws.ddb.update_item(
        TableName=aws.env["TASKS_TABLE"],
        Key={"PK": {"S": keys.project_pk(project_id)}, "SK": {"S": keys.task_sk(task_id)}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"S": json.dumps(data)}},
    )


def test_a_lease_carries_a_presigned_url_that_fetches_the_tasks_image(aws: Aws, admin: Actor) -> None:
    # Given an image task in the queue and an annotator of the project
    project_id = _project(admin)
    task_id = _image_task(aws, admin, project_id)
    ann = person("u-ann")
    members(project_id, "annotator", ann)

    # When the annotator leases it
    before = int(time.time())
    body = lease(project_id, ann)

    # Then the task carries a presigned GET URL of its image, valid for MEDIA_URL_SECONDS
    task = body["task"]
    assert task["task_id"] == task_id
    link = task["media"]["image"]
    seconds = int(aws.env["MEDIA_URL_SECONDS"])
    assert seconds <= int(aws.env["LEASE_SECONDS"])
    assert before + seconds <= link["expires_at"] <= int(time.time()) + seconds
    query = parse_qs(urlsplit(link["url"]).query)
    assert query["X-Amz-Expires"] == [str(seconds)] and "X-Amz-Signature" in query
    assert urlsplit(link["url"]).path.endswith(f"/{keys.project_data_prefix(project_id)}images/cat.png")
    # And the URL fetches the object's bytes with no other credentials
    fetched = requests.get(link["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == PNG
    # And a rework is absent on a first round
    assert task["rework"] is None


def test_presigning_makes_no_aws_request(aws: Aws, admin: Actor) -> None:
    # Given two projects with one queued task each: an image in S3, and inline text
    image_project, text_project = _project(admin), _project(admin, "text")
    _image_task(aws, admin, image_project)
    created = call("POST", f"/projects/{text_project}/tasks", admin, [{"data": {"text": "hello"}}])
    (text_task,) = created.body["task_ids"]
    queue.enter_label(text_project, text_task, token=f"tok-{text_task}", rework=0)
    ann = person("u-ann")
    members(image_project, "annotator", ann)
    members(text_project, "annotator", ann)

    # When the annotator leases each, and reads each leased task's detail
    with metered() as text_calls:
        text_lease = lease(text_project, ann)
        assert _detail(text_project, text_task, ann).status == 200
    with metered() as image_calls:
        image_lease = lease(image_project, ann)
        image_task = image_lease["task"]["task_id"]
        assert _detail(image_project, image_task, ann).body["media"]["image"]["url"]

    # Then the image's URLs cost no request at all: the same AWS calls as the text task, none to S3
    assert image_lease["task"]["media"] and not text_lease["task"]["media"]
    assert image_calls.calls == text_calls.calls, (image_calls.calls, text_calls.calls)
    assert not [name for name in image_calls.calls if name.startswith("s3:")]


def test_the_task_detail_carries_urls_for_members_and_hides_other_projects_tasks(
    aws: Aws, admin: Actor
) -> None:
    # Given two projects, each with an image task, and an annotator and a viewer of the first only
    mine, theirs = _project(admin), _project(admin)
    my_task, their_task = _image_task(aws, admin, mine), _image_task(aws, admin, theirs, "dog.png")
    ann, viewer, stranger = person("u-ann"), person("u-view", "reviewer"), person("u-stranger")
    members(mine, "annotator", ann)
    members(mine, "viewer", viewer)

    # When members read a task of their project they do not lease (reading a task needs no lease)
    for who in (ann, viewer, admin):
        detail = _detail(mine, my_task, who)
        # Then they get its media URLs, as the task read rule allows (task:read: every project role)
        assert detail.status == 200 and detail.body["media"]["image"]["url"], detail.body

    # When the annotator asks for the other project's task through their own project's path
    crossed = _detail(mine, their_task, ann)
    # Then it does not exist there: 404, no URL, nothing of the task
    assert crossed.status == 404 and crossed.body["error"]["code"] == "not_found"
    assert "dog.png" not in json.dumps(crossed.body)
    # And through the other project's path it is hidden as the project is (not a member)
    assert _detail(theirs, their_task, ann).status == 404
    # And a user in no project gets nothing either
    assert _detail(mine, my_task, stranger).status == 404
    # And the annotator's lease of the other project is hidden the same way
    assert call("POST", f"/projects/{theirs}/next", ann).status == 404


def test_a_hostile_manifest_line_gets_no_task_and_a_tampered_task_gets_no_url(aws: Aws, admin: Actor) -> None:
    # Given an image project, another project's private image, and a manifest that points at it
    project_id, other = _project(admin), _project(admin)
    bucket = aws.env["DATA_BUCKET"]
    prefix, other_prefix = keys.project_data_prefix(project_id), keys.project_data_prefix(other)
    _put(aws, f"{other_prefix}secret.png")
    _put(aws, f"{prefix}ok.png")
    lines = [
        {"data": {"image": f"s3://{bucket}/{other_prefix}secret.png"}},  # another project's key
        {"data": {"image": f"../{other}/secret.png"}},  # climbs out of the prefix
        {"data": {"image": f"s3://{bucket}/{prefix}../{other}/secret.png"}},  # normalises out of it
        {"data": {"image": "s3://someone-elses-bucket/secret.png"}},  # another bucket
        {"data": {"image": "ok.png"}},
    ]
    key = f"{prefix}hostile.jsonl"
    aws.s3.put_object(Bucket=bucket, Key=key, Body="\n".join(json.dumps(line) for line in lines).encode())
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    record = {
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "uploader"},
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "eTag": head["ETag"].strip('"'), "size": head["ContentLength"]},
        },
    }

    # When it is ingested
    [outcome] = ingest.process_message(json.dumps({"Records": [record]}), "m1", lambda: 900.0)

    # Then only the good line became a task, and the hostile ones are the import's errors
    assert (outcome.detail["tasks_created"], outcome.detail["errors"]) == (1, 4), outcome.detail
    page = call("GET", f"/projects/{project_id}/tasks", admin).body["items"]
    [task] = page
    assert task["data"]["image"]["key"] == f"{prefix}ok.png"
    assert _detail(project_id, task["task_id"], admin).body["media"]["image"]["url"]

    # When the stored task is rewritten behind the API's back to point out of its prefix
    ref = {"kind": "s3", "bucket": bucket, "media_type": "image"}
    _repoint(
        aws,
        project_id,
        task["task_id"],
        {
            "image": ref | {"key": f"{other_prefix}secret.png"},
            "dotted": ref | {"key": f"{prefix}../{other}/secret.png"},
            "foreign": ref | {"bucket": "someone-elses-bucket", "key": f"{prefix}ok.png"},
            "bare": ref | {"key": prefix},
            "kept": ref | {"key": f"{prefix}ok.png"},
        },
    )
    detail = _detail(project_id, task["task_id"], admin)
    # Then only the field still inside the project's prefix gets a URL
    assert detail.status == 200
    assert set(detail.body["media"]) == {"kept"}
    assert "secret.png" not in json.dumps(detail.body["media"])


def _rejected(aws: Aws, admin: Actor, steps: Workflow) -> tuple[str, str, Actor, Actor]:
    """An image task labelled by an annotator, rejected with a comment, sent back for rework."""
    project_id = _project(admin)
    task_id = _image_task(aws, admin, project_id)
    ann, reviewer = person("u-ann"), person("u-rev", "reviewer")
    members(project_id, "annotator", ann)
    members(project_id, "reviewer", reviewer)
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert submit(project_id, task_id, ann).status == 200
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
    review = call("POST", f"/projects/{project_id}/review/next", reviewer).body
    assert review["task"]["task_id"] == task_id and review["task"]["media"]["image"]["url"]
    decision = {"decision": "reject", "comment": "the cat is a dog"}
    assert call("POST", f"/projects/{project_id}/tasks/{task_id}/review", reviewer, decision).status == 200
    queue.enter_label(project_id, task_id, token=f"tok2-{task_id}", rework=1)
    return project_id, task_id, ann, reviewer


def test_a_reworked_task_shows_the_reviewers_comment_and_the_rejected_regions(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a task a reviewer rejected with a comment and the workflow sent back for rework
    project_id, task_id, ann, reviewer = _rejected(aws, admin, steps)

    # When its annotator leases it again
    task = lease(project_id, ann)["task"]

    # Then the lease carries the comment, the reviewer and the rejected annotation's results
    assert task["task_id"] == task_id
    rework = task["rework"]
    assert rework["comment"] == "the cat is a dog" and rework["reviewer"] == reviewer.user_id
    assert rework["rejected_at"]
    [rejected] = rework["rejected_annotations"]
    assert rejected["author"] == ann.user_id and rejected["results"] == GOOD["results"]
    # And the heartbeat returns the same, with fresh media URLs
    beat = call("POST", f"/projects/{project_id}/tasks/{task_id}/heartbeat", ann).body["task"]
    assert beat["rework"] == rework and beat["media"]["image"]["url"]
    # And the task's detail shows it to the manager too
    assert _detail(project_id, task_id, admin).body["rework"] == rework


def test_another_annotator_sees_the_comment_but_not_someone_elses_rejected_annotation(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a reworked task and a second annotator (annotators see only their own annotations)
    project_id, task_id, _, _ = _rejected(aws, admin, steps)
    other = person("u-other")
    members(project_id, "annotator", other)

    # When the other annotator reads the task's detail
    rework = _detail(project_id, task_id, other).body["rework"]

    # Then they see the review's comment, but not the first annotator's annotation
    assert rework["comment"] == "the cat is a dog"
    assert rework["rejected_annotations"] == []
    # Unless the project lets annotators see all annotations
    assert (
        call("PATCH", f"/projects/{project_id}", admin, {"settings": {"annotators_see_all": True}}).status
        == 200
    )
    assert len(_detail(project_id, task_id, other).body["rework"]["rejected_annotations"]) == 1


def test_an_approval_clears_the_rework(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a reworked task relabelled by its annotator and back in review
    project_id, task_id, ann, reviewer = _rejected(aws, admin, steps)
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert submit(project_id, task_id, ann).status == 200
    queue.enter_review(project_id, task_id, token=f"rev2-{task_id}")
    # (the reviewer still sees what they said last time)
    review = call("POST", f"/projects/{project_id}/review/next", reviewer).body["task"]
    assert review["rework"]["comment"] == "the cat is a dog"

    # When the reviewer approves it
    approve = call(
        "POST", f"/projects/{project_id}/tasks/{task_id}/review", reviewer, {"decision": "approve"}
    )
    assert approve.status == 200

    # Then the task's detail has no rework any more
    assert _detail(project_id, task_id, admin).body["rework"] is None


def test_a_tasks_history_is_paginated_and_only_for_managers_and_reviewers(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a task that was leased, submitted, leased for review and rejected
    project_id, task_id, ann, reviewer = _rejected(aws, admin, steps)
    path = f"/projects/{project_id}/tasks/{task_id}/history"

    # When the reviewer reads its history, oldest first, two records a page
    actions, cursor, pages = [], "", 0
    while True:
        page = call("GET", f"{path}?order=asc&limit=2{cursor}", reviewer)
        assert page.status == 200, page.body
        assert len(page.body["items"]) <= 2
        actions += [item["action"] for item in page.body["items"]]
        pages += 1
        if not page.body["next_cursor"]:
            break
        cursor = f"&cursor={page.body['next_cursor']}"

    # Then it holds the task's changes in order, over several pages
    expected = ["task.lease", "task.submit", "review.lease", "review.reject"]
    assert [a for a in actions if a in expected] == expected, actions
    assert pages >= 2
    # And newest first by default, with who and when, but no request details or seal
    newest_first = call("GET", path, admin).body["items"]
    assert [item["action"] for item in newest_first] == actions[::-1]
    reject = next(item for item in newest_first if item["action"] == "review.reject")
    assert reject["actor_id"] == reviewer.user_id and reject["after"]["comment"] == "the cat is a dog"
    assert not {"source_ip", "user_agent", "request_id", "hash", "prev_hash"} & set(reject)

    # When an annotator asks for it: forbidden; for another project's task id: not found
    assert call("GET", path, ann).status == 403
    other = _project(admin)
    assert call("GET", f"/projects/{other}/tasks/{task_id}/history", admin).status == 404
    assert call("GET", f"{path}?order=sideways", admin).status == 422


def test_the_data_bucket_lets_the_frontend_origin_get_and_upload(aws: Aws) -> None:
    # Given the data bucket as the local stack builds it, and the web app's origin
    bucket = aws.env["DATA_BUCKET"]
    origin = aws.spec.config.frontend_origin
    # When its CORS rule is read
    [rule] = aws.s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    # Then the origin may GET the media and PUT uploads, and reads the ETag of each part
    assert rule["AllowedOrigins"] == [origin]
    assert {"GET", "PUT"} <= set(rule["AllowedMethods"])
    assert "ETag" in rule["ExposeHeaders"]
    # And it is the rule the CDK app gives the bucket (one source: the spec)
    cors = aws.spec.bucket_cors(aws.spec.buckets["data"])
    assert cors is not None and set(rule["ExposeHeaders"]) == set(cors.exposed_headers)
