"""Activity on moto: a user's history (audit actor index) and a project's counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serval.adapters import activity as counters
from serval.adapters import dynamo
from serval.domain.actor import Actor
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import join
from tests.integration.queue_helpers import Workflow, steps

__all__ = ["steps"]  # the fixture, imported for this module

LABELS = {
    "controls": [
        {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "square"}]}
    ]
}
RESULT = [{"control": "shape", "type": "classification", "labels": ["circle"]}]


@pytest.fixture
def admin2() -> Actor:
    return Actor(user_id="u-admin-2", username="admin2", groups=("admin",), request_id="req-3")


def _project(actor: Actor) -> str:
    response = call(
        "POST", "/projects", actor, {"name": "P", "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _tasks(project_id: str, actor: Actor, n: int) -> list[str]:
    response = call(
        "POST", f"/projects/{project_id}/tasks", actor, [{"data": {"text": f"t{i}"}} for i in range(n)]
    )
    assert response.status == 201, response.body
    return list(response.body["task_ids"])


def _annotate(project_id: str, task_id: str, actor: Actor, lead_time_s: float) -> None:
    """A submit through the queue (what the activity counters count): the task queued, leased, labelled."""
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    leased = call("POST", f"/projects/{project_id}/next", actor)
    assert leased.status == 200 and leased.body["task"]["task_id"] == task_id, leased.body
    url = f"/projects/{project_id}/tasks/{task_id}/submit"
    response = call("POST", url, actor, {"results": RESULT, "lead_time_s": lead_time_s})
    assert response.status == 200, response.body


def _walk(url: str, actor: Actor) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        sep = "&" if "?" in url else "?"
        page = call("GET", url + (f"{sep}cursor={cursor}" if cursor else ""), actor)
        assert page.status == 200, page.body
        items += page.body["items"]
        cursor = page.body["next_cursor"]
        if not cursor:
            return items


def test_project_activity_counts_annotations_per_user_per_day_with_lead_times(
    aws: Aws, admin: Actor, annotator: Actor, steps: Workflow
) -> None:
    # Given submits today by two users (through the API: counters in the same transaction)
    project_id = _project(admin)
    join(project_id, annotator, "annotator")
    task_ids = _tasks(project_id, admin, 5)
    for task_id, lead in zip(task_ids[:4], (3.0, 5.0, 6.0, 100.0), strict=True):
        _annotate(project_id, task_id, annotator, lead)
    _annotate(project_id, task_ids[4], admin, 0.5)
    # And an earlier day's counters for the annotator (written as a create transaction would)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT10:00:00.000Z")
    tx = dynamo.Tx()
    counters.add_annotation(tx, project_id, annotator.user_id, yesterday, 40.0)
    tx.commit()
    tx = dynamo.Tx()
    counters.add_annotation(tx, project_id, annotator.user_id, yesterday, 50.0)
    tx.commit()
    today = datetime.now(UTC).date()
    # When the project's activity is read for the last two days
    response = call(
        "GET",
        f"/projects/{project_id}/activity?since={today - timedelta(days=1)}&until={today}",
        admin,
    )
    # Then both users are active, with their counts per day and lead-time stats
    assert response.status == 200, response.body
    body = response.body
    assert (body["active_users"], body["annotations"]) == (2, 7)
    users = {u["user_id"]: u for u in body["users"]}
    mine = users[annotator.user_id]
    assert [(d["day"], d["annotations"], d["lead_time_s"]) for d in mine["days"]] == [
        (str(today - timedelta(days=1)), 2, 90.0),
        (str(today), 4, 114.0),
    ]
    assert mine["annotations"] == 6
    assert mine["lead_time_s_total"] == 204.0
    # six lead times 3, 5, 6 | 40, 50, 100: the median rank falls between 6 (bucket [4, 8)) and
    # 40 (bucket [32, 64)); the estimate is the lower edge of the upper bucket (true median: 23)
    assert mine["lead_time_s_median"] == 32.0
    assert mine["last_at"] > yesterday
    assert users[admin.user_id]["annotations"] == 1
    assert users[admin.user_id]["lead_time_s_median"] == pytest.approx(0.5)
    # And the most recently active user comes first
    assert body["users"][0]["user_id"] == admin.user_id
    # And a range before any work is empty
    old = call("GET", f"/projects/{project_id}/activity?since=2020-01-01&until=2020-01-31", admin).body
    assert (old["active_users"], old["users"]) == (0, [])


def test_project_activity_range_is_validated(aws: Aws, admin: Actor) -> None:
    project_id = _project(admin)
    url = f"/projects/{project_id}/activity"
    assert call("GET", f"{url}?since=2025-02-01&until=2025-01-01", admin).status == 422
    assert call("GET", f"{url}?since=2020-01-01&until=2025-01-01", admin).status == 422  # > 366 days
    assert call("GET", f"{url}?since=soon", admin).status == 422
    default = call("GET", url, admin)
    assert default.status == 200
    assert default.body["until"] == str(datetime.now(UTC).date())
    assert call("GET", "/projects/p_nope/activity", admin).status == 404


def test_user_history_reads_the_actor_index_newest_first_with_filters(
    aws: Aws, admin: Actor, admin2: Actor
) -> None:
    # Given admin2's work in two projects and admin's in one
    a, b = _project(admin), _project(admin)
    for i in range(3):
        assert call("PATCH", f"/projects/{a}", admin2, {"description": f"a{i}"}).status == 200
        assert call("PATCH", f"/projects/{b}", admin2, {"description": f"b{i}"}).status == 200
        assert call("PATCH", f"/projects/{a}", admin, {"description": "admin"}).status == 200
    # When admin reads admin2's history two at a time
    events = _walk(f"/users/{admin2.user_id}/activity?limit=2", admin)
    # Then it holds only admin2's six changes, newest first, without payloads
    assert len(events) == 6
    assert [e["project_id"] for e in events] == [b, a] * 3
    assert {e["action"] for e in events} == {"project.update"}
    assert "after" not in events[0]
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    # And filtered by project
    only_a = _walk(f"/users/{admin2.user_id}/activity?project_id={a}", admin)
    assert [e["project_id"] for e in only_a] == [a] * 3
    # And by time
    since = events[1]["at"]
    assert len(_walk(f"/users/{admin2.user_id}/activity?since={since}", admin)) == 2
    assert call("GET", f"/users/{admin2.user_id}/activity?since={since}&until={since}", admin).status == 422


def test_users_read_their_own_history_and_nobody_elses(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given an annotator who annotated once, and an admin
    project_id = _project(admin)
    join(project_id, annotator, "annotator")
    [task_id] = _tasks(project_id, admin, 1)
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    assert call("POST", f"/projects/{project_id}/next", annotator).body["task"]["task_id"] == task_id
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    assert call("POST", url, annotator, {"results": RESULT}).status == 201  # the lease holder's draft
    # When the annotator reads their own history, directly and through /me
    own = call("GET", f"/users/{annotator.user_id}/activity", annotator)
    me = call("GET", "/me/activity", annotator)
    # Then both show their lease and their annotation, newest first
    assert own.status == me.status == 200
    assert [e["action"] for e in own.body["items"]] == ["annotation.create", "task.lease"]
    assert me.body == own.body
    # And the admin's history is hidden from them as if the user did not exist
    hidden = call("GET", f"/users/{admin.user_id}/activity", annotator)
    missing = call("GET", "/users/u-nobody/activity", annotator)
    assert hidden.status == missing.status == 404
    assert hidden.body["error"]["code"] == missing.body["error"]["code"] == "not_found"
    # And an admin reads anyone's
    assert call("GET", f"/users/{annotator.user_id}/activity", admin).body == own.body
