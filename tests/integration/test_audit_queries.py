"""Audit queries through the API against moto: plans by project, actor, target and time; pages."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from serval.adapters import audit, audit_queries, dynamo
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from tests.integration.api_client import call
from tests.integration.conftest import Aws

LABELS = {"controls": [{"name": "shape", "type": "classification", "classes": [{"name": "circle"}]}]}


@pytest.fixture
def admin2() -> Actor:
    return Actor(user_id="u-admin-2", username="admin2", groups=("admin",), request_id="req-3")


def _project(actor: Actor) -> str:
    response = call(
        "POST", "/projects", actor, {"name": "P", "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _touch(project_id: str, actor: Actor, text: str) -> None:
    response = call("PATCH", f"/projects/{project_id}", actor, {"description": text})
    assert response.status == 200, response.body


def _walk(url: str, actor: Actor) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a listing, following cursors; and the cursors seen."""
    records: list[dict[str, Any]] = []
    cursors: list[str] = []
    cursor = None
    for _ in range(200):
        sep = "&" if "?" in url else "?"
        page = call("GET", url + (f"{sep}cursor={cursor}" if cursor else ""), actor)
        assert page.status == 200, page.body
        records += page.body["items"]
        cursor = page.body["next_cursor"]
        if not cursor:
            return records, cursors
        cursors.append(cursor)
    raise AssertionError("the listing never ended")


def _decoded(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


def test_project_audit_pages_through_every_record_of_that_project_only(aws: Aws, admin: Actor) -> None:
    # Given two projects with interleaved changes
    a, b = _project(admin), _project(admin)
    for i in range(7):
        _touch(a, admin, f"a{i}")
        if i < 3:
            _touch(b, admin, f"b{i}")
    # When project a's audit is read 3 records at a time
    records, cursors = _walk(f"/projects/{a}/audit?limit=3", admin)
    # Then every record is a's, newest first, none twice, over several pages
    assert len(cursors) >= 2
    assert {r["project_id"] for r in records} == {a}
    assert [r["action"] for r in records] == ["project.update"] * 7 + ["project.create"]
    assert len({r["audit_id"] for r in records}) == 8
    assert [r["at"] for r in records] == sorted((r["at"] for r in records), reverse=True)
    assert [r["after"]["description"] for r in records[:7]] == [f"a{i}" for i in reversed(range(7))]
    # And ascending order gives the same records oldest first
    ascending, _ = _walk(f"/projects/{a}/audit?limit=5&order=asc", admin)
    assert [r["audit_id"] for r in ascending] == [r["audit_id"] for r in reversed(records)]


def test_actor_filter_uses_the_actor_index_and_never_leaks_other_projects(
    aws: Aws, admin: Actor, admin2: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given admin2 working in two projects, interleaved, and admin working in a too
    a, b = _project(admin), _project(admin)
    for i in range(4):
        _touch(b, admin2, f"b{i}")
        _touch(a, admin2, f"a{i}")
        _touch(b, admin2, f"b{i}-again")
        _touch(a, admin, f"admin{i}")
    # And tiny DynamoDB pages, so pages end on records the filter drops (project b's)
    monkeypatch.setattr(audit_queries, "MIN_READ", 1)
    monkeypatch.setattr(audit_queries, "MAX_PAGES", 1)
    # When a's audit is filtered by admin2
    records, cursors = _walk(f"/projects/{a}/audit?actor={admin2.user_id}&limit=2", admin)
    # Then exactly admin2's records in a come back, and no cursor names project b
    assert [r["after"]["description"] for r in records] == [f"a{i}" for i in reversed(range(4))]
    assert {(r["project_id"], r["actor_id"]) for r in records} == {(a, admin2.user_id)}
    assert cursors
    assert all(b not in _decoded(c) for c in cursors)


def test_target_filter_and_action_filter(aws: Aws, admin: Actor) -> None:
    # Given a project with tasks and changes to one task
    a = _project(admin)
    task_ids = call(
        "POST", f"/projects/{a}/tasks", admin, [{"data": {"text": f"t{i}"}} for i in range(3)]
    ).body["task_ids"]
    target = task_ids[1]
    for priority in (1, 2, 3):
        call("PATCH", f"/projects/{a}/tasks/{target}", admin, {"priority": priority})
    call("PATCH", f"/projects/{a}/tasks/{task_ids[0]}", admin, {"priority": 9})
    # When the audit is filtered by that task
    records, _ = _walk(f"/projects/{a}/audit?target_type=task&target_id={target}&limit=2", admin)
    # Then only its records come back
    assert {(r["target_type"], r["target_id"]) for r in records} == {("task", target)}
    assert len(records) == 3
    # And by action only: every task.update of the project
    updates, _ = _walk(f"/projects/{a}/audit?action=task.update", admin)
    assert len(updates) == 4
    # And a target type without its id is refused
    assert call("GET", f"/projects/{a}/audit?target_type=task", admin).status == 422


def test_time_range_is_since_inclusive_until_exclusive_and_validated(aws: Aws, admin: Actor) -> None:
    # Given changes in three separate time windows
    a = _project(admin)
    time.sleep(0.01)
    t1 = utcnow()
    time.sleep(0.01)
    for i in range(3):
        _touch(a, admin, f"middle{i}")
    time.sleep(0.01)
    t2 = utcnow()
    time.sleep(0.01)
    _touch(a, admin, "late")
    # When the audit is read between t1 and t2
    middle, _ = _walk(f"/projects/{a}/audit?since={t1}&until={t2}&limit=2", admin)
    # Then only the middle window's records come back
    assert [r["after"]["description"] for r in middle] == ["middle2", "middle1", "middle0"]
    since_only, _ = _walk(f"/projects/{a}/audit?since={t2}", admin)
    assert [r["after"]["description"] for r in since_only] == ["late"]
    until_only, _ = _walk(f"/projects/{a}/audit?until={t1}", admin)
    assert [r["action"] for r in until_only] == ["project.create"]
    # And with the actor index too
    by_actor, _ = _walk(f"/projects/{a}/audit?actor={admin.user_id}&since={t1}&until={t2}", admin)
    assert len(by_actor) == 3
    # And bad ranges are 422s
    assert call("GET", f"/projects/{a}/audit?since={t2}&until={t1}", admin).status == 422
    assert call("GET", f"/projects/{a}/audit?since={t1}&until={t1}", admin).status == 422
    assert call("GET", f"/projects/{a}/audit?since=yesterday", admin).status == 422
    assert call("GET", f"/projects/{a}/audit?since=2025-01-01T00:00:00", admin).status == 422  # no offset


def test_cursors_are_bound_to_their_listing(aws: Aws, admin: Actor) -> None:
    a, b = _project(admin), _project(admin)
    for i in range(3):
        _touch(a, admin, f"a{i}")
        _touch(b, admin, f"b{i}")
    cursor = call("GET", f"/projects/{a}/audit?limit=1", admin).body["next_cursor"]
    assert cursor
    refused = call("GET", f"/projects/{b}/audit?cursor={cursor}", admin)
    assert refused.status == 422
    assert refused.body["error"]["code"] == "invalid_cursor"
    # a cursor of a's partition does not fit an actor listing either
    assert call("GET", f"/projects/{a}/audit?actor={admin.user_id}&cursor={cursor}", admin).status == 422
    assert call("GET", f"/projects/{a}/audit?cursor=not-a-cursor", admin).status == 422


def test_unknown_project_is_404(aws: Aws, admin: Actor) -> None:
    assert call("GET", "/projects/p_nope/audit", admin).status == 404


def test_global_audit_lists_the_global_scope_and_one_project_on_request(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given global records (user management) and project records
    a = _project(admin)
    _touch(a, admin, "x")
    for user in ("u-1", "u-2", "u-3"):
        tx = dynamo.Tx()
        audit.record(tx, admin, "user.create", "user", user, None, after={"user_id": user})
        tx.commit()
        time.sleep(0.002)  # records of one millisecond sort by their random ids
    # When an admin reads the global audit
    records, _ = _walk("/audit?limit=2", admin)
    # Then only the global records come back
    assert [r["target_id"] for r in records] == ["u-3", "u-2", "u-1"]
    assert {r["project_id"] for r in records} == {None}
    # And with a target filter
    one, _ = _walk("/audit?target_type=user&target_id=u-2", admin)
    assert [r["target_id"] for r in one] == ["u-2"]
    # And a project's records on request
    project_records, _ = _walk(f"/audit?project_id={a}&actor={admin.user_id}", admin)
    assert {r["project_id"] for r in project_records} == {a}
    assert [r["action"] for r in project_records] == ["project.update", "project.create"]
    # And nobody but an admin reads it
    refused = call("GET", "/audit", annotator)
    assert refused.status == 403
