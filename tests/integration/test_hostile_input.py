"""Hostile and careless input gets a named 4xx, never a 5xx, and never before authorization."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from serval.domain.actor import Actor
from tests.integration.api_client import ApiResponse, call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join

LABELS = {
    "controls": [
        {
            "name": "sentiment",
            "type": "classification",
            "classes": [{"name": "pos"}, {"name": "neg"}],
            "attributes": [{"name": "confidence", "type": "number"}],
        }
    ]
}
OUTSIDER = Actor(user_id="u-outsider", username="outsider", groups=("manager",), request_id="req-o")
MANAGER = Actor(user_id="u-manager", username="manager", groups=("manager",), request_id="req-m")


def _project(admin: Actor) -> str:
    response = call(
        "POST", "/projects", admin, {"name": "Hostile", "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _error(response: ApiResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert set(response.body) == {"error"}
    assert set(response.body["error"]) == {"code", "message", "details"}
    assert response.body["error"]["code"] == code, response.body
    return dict(response.body["error"])


def _cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


DEEP = "[" * 5000 + "]" * 5000
HUGE_INT = '[{"data": {"text": "x"}, "priority": ' + "9" * 5000 + "}]"


# ---- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (DEEP, 400, "json_too_deep"),
        (
            '[{"data": {"text": "x"}, "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}]",
            400,
            "json_too_deep",
        ),
        (HUGE_INT, 422, "number_out_of_range"),
        ('[{"data": {"text": "x"}, "metadata": {"n": 1e400}}]', 422, "number_out_of_range"),
        ('[{"data": {"text": "x"}, "metadata": {"n": NaN}}]', 422, "non_finite_number"),
        ('[{"data": {"text": "x"}, "metadata": {"n": -Infinity}}]', 422, "non_finite_number"),
        ('[{"data": ', 400, "malformed_json"),
    ],
)
def test_a_body_python_cannot_read_safely_is_a_named_4xx_after_authorization(
    aws: Aws, admin: Actor, raw: str, status: int, code: str
) -> None:
    # Given a project, and a manager who is not its member
    project_id = _project(admin)
    enrol(OUTSIDER)

    # When the non-member sends the hostile body to the project's task route
    refused = call("POST", f"/projects/{project_id}/tasks", OUTSIDER, raw_body=raw)
    # Then they learn only that the project is not theirs (404), nothing about the body
    _error(refused, 404, "not_found")

    # And a member sending the same body gets the body's own named error, with nothing created
    answer = call("POST", f"/projects/{project_id}/tasks", admin, raw_body=raw)
    _error(answer, status, code)
    assert call("GET", f"/projects/{project_id}/tasks", admin).body["items"] == []


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "application/x-www-form-urlencoded", "text/plain"]
)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415_after_authorization(
    aws: Aws, admin: Actor, content_type: str
) -> None:
    # Given a project and a non-member
    project_id = _project(admin)
    enrol(OUTSIDER)
    url, headers = f"/projects/{project_id}/tasks", {"Content-Type": content_type}
    body = [{"data": {"text": "x"}}]
    # When a body is sent as a form, multipart (without a boundary) or text
    # Then the non-member gets 404, and a member 415 unsupported_media_type
    _error(call("POST", url, OUTSIDER, body, headers=headers), 404, "not_found")
    _error(call("POST", url, admin, body, headers=headers), 415, "unsupported_media_type")


def test_non_finite_numbers_in_annotation_attributes_are_refused(aws: Aws, admin: Actor) -> None:
    # Given a task
    project_id = _project(admin)
    [task_id] = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "hi"}}]).body[
        "task_ids"
    ]
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    for constant in ("NaN", "Infinity", "-Infinity"):
        raw = (
            '{"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"], '
            f'"attributes": {{"confidence": {constant}}}}}]}}'
        )
        # When an annotation's attribute is NaN or infinite
        answer = call("POST", url, admin, raw_body=raw)
        # Then it is refused with 422, and nothing is stored
        _error(answer, 422, "non_finite_number")
    listed = call("GET", url, admin)
    assert listed.status == 200
    assert listed.body["items"] == []


def test_a_long_list_of_problems_is_capped_and_counted(aws: Aws, admin: Actor) -> None:
    # Given a bulk create of 1,000 tasks, each wrong in twenty ways
    project_id = _project(admin)
    bad = [{"data": {f"k{i}": 5 for i in range(20)}, "priority": "x"} for _ in range(1000)]

    # When it is sent
    answer = call("POST", f"/projects/{project_id}/tasks", admin, bad)

    # Then the 422 lists the first 50 problems and says how many there are
    error = _error(answer, 422, "validation_failed")
    assert len(error["details"]) == 50
    assert "problems; the first 50 are listed" in error["message"]
    assert len(json.dumps(answer.body)) < 64 * 1024


# ---- cursors ---------------------------------------------------------------------------------


def test_cursors_that_are_not_this_listings_keys_are_refused(aws: Aws, admin: Actor) -> None:
    # Given a project with a task, a tag and an annotation, so every listing has pages
    project_id = _project(admin)
    enrol(admin)
    [task_id] = call(
        "POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "hi"}, "tags": ["t"]}]
    ).body["task_ids"]
    pk = f"PROJECT#{project_id}"
    listings = {
        f"/projects/{project_id}/tasks": ("GSI2PK", f"{pk}#TASKS"),
        f"/projects/{project_id}/tasks?status=queued": ("GSI1PK", f"{pk}#STATUS#queued"),
        f"/projects/{project_id}/tasks?tag=t": ("PK", pk),
        f"/projects/{project_id}/tasks/{task_id}/annotations": ("PK", pk),
        f"/projects/{project_id}/members": ("PK", pk),
        f"/projects/{project_id}/imports": ("GSI2PK", f"{pk}#IMPORTS"),
        f"/projects/{project_id}/audit": ("PK", pk),
        "/projects": ("GSI1PK", "PROJECTS"),
        "/users": ("GSI1PK", "USERS"),
    }
    for url, (attr, partition) in listings.items():
        sep = "&" if "?" in url else "?"
        hostile = {
            "only the partition": {attr: {"S": partition}},
            "a number": {attr: {"S": partition}, "PK": {"N": "1"}, "SK": {"S": "x"}},
            "an extra attribute": {
                attr: {"S": partition},
                "PK": {"S": pk},
                "SK": {"S": "x"},
                "x": {"S": "y"},
            },
            "not a key": [1, 2],
        }
        for what, key in hostile.items():
            # When a listing is called with a cursor that is not one of its keys
            answer = call("GET", f"{url}{sep}cursor={_cursor(key)}", admin)  # type: ignore[arg-type]
            # Then it is a 422 invalid_cursor, not a query DynamoDB fails
            assert answer.status == 422, (url, what, answer.body)
            assert answer.body["error"]["code"] == "invalid_cursor", (url, what)
    # And a cursor whose sort key is outside the query's range is refused too
    outside = {"PK": {"S": pk}, "SK": {"S": "TASK#x"}}
    answer = call("GET", f"/projects/{project_id}/tasks?tag=t&cursor={_cursor(outside)}", admin)
    _error(answer, 422, "invalid_cursor")


def test_a_cursor_the_listing_made_still_pages(aws: Aws, admin: Actor) -> None:
    # Given three tagged tasks
    project_id = _project(admin)
    items = [{"data": {"text": f"t{i}"}, "tags": ["t"]} for i in range(3)]
    assert call("POST", f"/projects/{project_id}/tasks", admin, items).status == 201
    for url in (f"/projects/{project_id}/tasks?limit=2", f"/projects/{project_id}/tasks?tag=t&limit=2"):
        # When the first page's cursor is passed back
        first = call("GET", url, admin).body
        second = call("GET", f"{url}&cursor={first['next_cursor']}", admin)
        # Then the listing continues where it stopped
        assert second.status == 200, second.body
        assert len(first["items"]) + len(second.body["items"]) == 3


# ---- uploads ---------------------------------------------------------------------------------


def test_completing_an_upload_outside_the_project_or_with_wrong_parts_is_a_4xx(
    aws: Aws, admin: Actor
) -> None:
    # Given two projects and a real multipart upload in the first
    project_id, other = _project(admin), _project(admin)
    upload = call(
        "POST",
        f"/projects/{project_id}/uploads",
        admin,
        {"filename": "m.jsonl", "size": 5, "multipart": True},
    ).body
    url = f"/projects/{project_id}/uploads/complete"
    parts = [{"part_number": 1, "etag": "nope"}]
    escapes = [
        f"projects/{project_id}/../{other}/m.jsonl",
        f"projects/{project_id}/./m.jsonl",
        f"projects/{project_id}//m.jsonl",
        f"projects/{project_id}/",
        f"projects/{other}/m.jsonl",
    ]
    for key in escapes:
        # When the key escapes the project's prefix (once normalised) or is not an object
        answer = call("POST", url, admin, {"key": key, "upload_id": upload["upload_id"], "parts": parts})
        # Then no such upload exists in this project
        _error(answer, 404, "upload_not_found")
    # And parts S3 refuses are a 422 that names S3's reason
    wrong_part = {"key": upload["key"], "upload_id": upload["upload_id"], "parts": parts}
    error = _error(call("POST", url, admin, wrong_part), 422, "upload_refused")
    assert error["details"]["s3_error"] == "InvalidPart"


def test_a_huge_multipart_upload_pages_its_part_urls(aws: Aws, admin: Actor) -> None:
    # Given a 640 GiB upload (10,000 parts of 64 MiB)
    project_id = _project(admin)
    upload = call(
        "POST",
        f"/projects/{project_id}/uploads",
        admin,
        {"filename": "big.jsonl", "size": 640 * 1024**3},
    )
    assert upload.status == 201, upload.body
    # Then its answer holds the first 1,000 part URLs and the part count
    assert upload.body["part_count"] == 10_000
    assert len(upload.body["part_urls"]) == 1000
    assert "partNumber=1&" in upload.body["part_urls"][0] or "partNumber=1" in upload.body["part_urls"][0]

    # When the client asks for the rest, a page at a time
    urls = list(upload.body["part_urls"])
    while len(urls) < upload.body["part_count"]:
        page = call(
            "POST",
            f"/projects/{project_id}/uploads/parts",
            admin,
            {"key": upload.body["key"], "upload_id": upload.body["upload_id"], "first_part": len(urls) + 1},
        )
        assert page.status == 200, page.body
        assert page.body["first_part"] == len(urls) + 1
        urls += page.body["part_urls"]
    # Then it has one URL per part, each for its own part number
    assert len(urls) == 10_000
    assert f"partNumber={10_000}" in urls[-1]
    # And a range past the last part stops at part 10,000
    tail = call(
        "POST",
        f"/projects/{project_id}/uploads/parts",
        admin,
        {"key": upload.body["key"], "upload_id": upload.body["upload_id"], "first_part": 9_999},
    )
    assert len(tail.body["part_urls"]) == 2
    # And part URLs are only handed out for keys in the project
    escape = {"key": f"projects/{project_id}/../x/big.jsonl", "upload_id": "u", "first_part": 1}
    _error(call("POST", f"/projects/{project_id}/uploads/parts", admin, escape), 404, "upload_not_found")


# ---- idempotency and specific codes ------------------------------------------------------------


def test_an_idempotency_key_reused_for_another_body_is_a_409(aws: Aws, admin: Actor) -> None:
    # Given a bulk create with an Idempotency-Key
    project_id = _project(admin)
    url = f"/projects/{project_id}/tasks"
    key = {"Idempotency-Key": "create-1"}
    first = call("POST", url, admin, [{"data": {"text": "a"}}], headers=key)
    assert first.status == 201

    # When the same key comes with another body
    other = call("POST", url, admin, [{"data": {"text": "b"}}, {"data": {"text": "c"}}], headers=key)

    # Then it is refused with 409 idempotency_key_reused, and nothing is created
    _error(other, 409, "idempotency_key_reused")
    assert len(call("GET", url, admin).body["items"]) == 1
    # And the same body with the same key is still a replay of the first answer
    again = call("POST", url, admin, [{"data": {"text": "a"}}], headers=key)
    assert again.status == 201
    assert again.body["replayed"] is True
    assert again.body["task_ids"] == first.body["task_ids"]


def test_membership_refusals_have_their_readme_codes(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a project with one manager, and an annotator
    project_id = _project(admin)
    for person in (admin, annotator, MANAGER):
        enrol(person)
    join(project_id, MANAGER, "manager")
    members = f"/projects/{project_id}/members"
    others = [
        m["user_id"]
        for m in call("GET", members, admin).body["items"]
        if m["role"] == "manager" and m["user_id"] != MANAGER.user_id
    ]
    for user_id in others:
        assert call("DELETE", f"{members}/{user_id}", admin).status == 204

    # When the annotator is made a manager, above their global role
    above = call("POST", members, admin, {"user_id": annotator.user_id, "role": "manager"})
    # Then it is 422 role_above_ceiling
    _error(above, 422, "role_above_ceiling")

    # And removing the last manager is 409 last_manager
    last = call("DELETE", f"{members}/{MANAGER.user_id}", admin)
    _error(last, 409, "last_manager")
