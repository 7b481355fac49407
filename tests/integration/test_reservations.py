"""Reservations never strand a task: removal, a role that cannot label, disabling a user and
time each free a task reserved for a member (by assignment, or on rework to its last annotator)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.metering import metered
from serval.adapters import tasks
from serval.domain.actor import Actor
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import (
    GOOD,
    Workflow,
    lease,
    members,
    person,
    project,
    queued,
    steps,
    submit,
)

__all__ = ["steps"]  # the fixture, imported for this module

PASSWORD = "Reserve-Passw0rd!2026"


def _assigned(admin: Actor, chosen: Actor, other: Actor) -> tuple[str, str]:
    """A queued task assigned to ``chosen``; ``other`` is a second annotator, offered nothing."""
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    members(project_id, "annotator", chosen, other)
    url = f"/projects/{project_id}/tasks/{task_id}/assign"
    assert call("POST", url, admin, {"user_id": chosen.user_id}).status == 200
    assert lease(project_id, other)["task"] is None
    return project_id, task_id


def _reworked(admin: Actor, ann: Actor, other: Actor, steps: Workflow) -> tuple[str, str]:
    """A task labelled by ``ann``, rejected and back in the queue reserved for ``ann``."""
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    members(project_id, "annotator", ann, other)
    _label_and_reject(project_id, task_id, ann, admin, rounds=0)
    queue.enter_label(project_id, task_id, token=f"tok1-{task_id}", rework=1)
    assert tasks.get_item(project_id, task_id).assignee == ann.user_id
    assert lease(project_id, other)["task"] is None
    return project_id, task_id


def _label_and_reject(project_id: str, task_id: str, ann: Actor, reviewer: Actor, rounds: int) -> None:
    """``ann`` labels the task, the workflow puts it into review, and ``reviewer`` rejects it."""
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert submit(project_id, task_id, ann).status == 200
    queue.enter_review(project_id, task_id, token=f"rev{rounds}-{task_id}")
    assert call("POST", f"/projects/{project_id}/review/next", reviewer).body["task"]["task_id"] == task_id
    decided = call(
        "POST",
        f"/projects/{project_id}/tasks/{task_id}/review",
        reviewer,
        {"decision": "reject", "comment": "no"},
    )
    assert decided.status == 200, decided.body


@pytest.mark.parametrize("reserved_by", ["assignment", "rework"])
def test_removing_the_member_frees_the_task_for_the_others(
    aws: Aws, admin: Actor, steps: Workflow, reserved_by: str
) -> None:
    # Given a task reserved for a member
    chosen, other = person("u-chosen"), person("u-other")
    if reserved_by == "assignment":
        project_id, task_id = _assigned(admin, chosen, other)
    else:
        project_id, task_id = _reworked(admin, chosen, other, steps)
    # When the member is removed from the project
    with metered() as calls:
        assert call("DELETE", f"/projects/{project_id}/members/{chosen.user_id}", admin).status == 204
    # Then the task is offered to another annotator, and the release was found by key, not by scanning
    assert "dynamodb:Scan" not in calls.calls
    assert lease(project_id, other)["task"]["task_id"] == task_id
    item = tasks.get_item(project_id, task_id)
    assert (item.assignee, item.GSI3PK) == (None, None)


def test_a_role_that_cannot_label_frees_the_task(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a task assigned to a member who labels (their global role would allow reviewing)
    chosen, other = person("u-chosen", "reviewer"), person("u-other")
    project_id, task_id = _assigned(admin, chosen, other)
    url = f"/projects/{project_id}/members/{chosen.user_id}"
    # When they become a reviewer (who may still label), the task stays theirs
    assert call("PATCH", url, admin, {"role": "reviewer"}).status == 200
    assert lease(project_id, other)["task"] is None
    # When they become a viewer, who may not label
    assert call("PATCH", url, admin, {"role": "viewer"}).status == 200
    # Then another annotator is offered it
    assert lease(project_id, other)["task"]["task_id"] == task_id


def _invite(admin: Actor, email: str) -> Actor:
    body = {"email": email, "groups": ["annotator"], "temporary_password": PASSWORD, "send_invite": False}
    created = call("POST", "/users", admin, body)
    assert created.status == 201, created.body
    user = created.body
    return Actor(user_id=user["user_id"], username=user["username"], groups=("annotator",))


@pytest.mark.parametrize("how", ["disable", "no groups"])
def test_disabling_a_user_or_taking_their_groups_frees_their_tasks_in_every_project(
    aws: Aws, admin: Actor, steps: Workflow, how: str
) -> None:
    # Given a user with a task reserved in each of two projects (one by rework)
    chosen, other = _invite(admin, "chosen@example.com"), person("u-other")
    first, first_task = _assigned(admin, chosen, other)
    second, second_task = _reworked(admin, chosen, other, steps)
    # When an admin disables the user, or leaves them no group (a viewer everywhere)
    if how == "disable":
        changed = call("POST", f"/users/{chosen.user_id}/disable", admin)
    else:
        changed = call("PUT", f"/users/{chosen.user_id}/groups", admin, {"groups": []})
    assert changed.status == 200, changed.body
    # Then both tasks are offered to the other annotator
    assert lease(first, other)["task"]["task_id"] == first_task
    assert lease(second, other)["task"]["task_id"] == second_task
    # And each release is audited
    trail = call("GET", f"/projects/{first}/audit?target_type=task&target_id={first_task}", admin).body
    assert "task.unassign" in [r["action"] for r in trail["items"]]


def test_a_reservation_expires_and_then_anyone_may_take_the_task(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task assigned to a member whose reservation has ended (RESERVATION_SECONDS is past)
    monkeypatch.setenv("RESERVATION_SECONDS", "-1")
    chosen, other = person("u-chosen"), person("u-other")
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    members(project_id, "annotator", chosen, other)
    assert (
        call(
            "POST", f"/projects/{project_id}/tasks/{task_id}/assign", admin, {"user_id": chosen.user_id}
        ).status
        == 200
    )
    # When another annotator asks for work
    leased: dict[str, Any] = lease(project_id, other)
    # Then they are offered it, and may submit it
    assert leased["task"]["task_id"] == task_id
    assert submit(project_id, task_id, other, GOOD).status == 200
    assert tasks.get_item(project_id, task_id).assignee is None


def test_nothing_is_reserved_for_someone_who_may_not_label(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a disabled member
    disabled, other = _invite(admin, "off@example.com"), person("u-other")
    project_id = project(admin)
    members(project_id, "annotator", disabled, other)
    assert call("POST", f"/users/{disabled.user_id}/disable", admin).status == 200
    (task_id,) = queued(project_id, admin, 1)
    # When a manager assigns a task to them
    refused = call(
        "POST", f"/projects/{project_id}/tasks/{task_id}/assign", admin, {"user_id": disabled.user_id}
    )
    # Then it is refused with the reason
    assert refused.status == 422
    assert refused.body["error"]["message"] == "the assignee's account is disabled"


def test_rework_is_not_reserved_for_an_annotator_who_left(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a task labelled by an annotator who then left the project, and rejected
    gone, other = person("u-gone"), person("u-other")
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    members(project_id, "annotator", gone, other)
    _label_and_reject(project_id, task_id, gone, admin, rounds=0)
    assert call("DELETE", f"/projects/{project_id}/members/{gone.user_id}", admin).status == 204
    # When the workflow sends it back to labelling
    queue.enter_label(project_id, task_id, token=f"tok1-{task_id}", rework=1)
    # Then it is reserved for nobody, and another annotator is offered it
    assert tasks.get_item(project_id, task_id).assignee is None
    assert lease(project_id, other)["task"]["task_id"] == task_id


def test_the_task_list_filters_by_assignee_in_this_project_only(aws: Aws, admin: Actor) -> None:
    # Given two queued tasks of which one is assigned to a member, and a task of another
    # project assigned to the same member
    chosen, other = person("u-listed"), person("u-unlisted")
    project_id = project(admin)
    first, second = queued(project_id, admin, 2)
    members(project_id, "annotator", chosen, other)
    elsewhere = project(admin)
    (foreign,) = queued(elsewhere, admin, 1)
    members(elsewhere, "annotator", chosen)
    for pid, tid in ((project_id, second), (elsewhere, foreign)):
        assert (
            call("POST", f"/projects/{pid}/tasks/{tid}/assign", admin, {"user_id": chosen.user_id}).status
            == 200
        )

    # When the list is filtered by the member, alone and with a status that does or doesn't match
    listed = call("GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}", admin)
    queued_only = call("GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}&status=queued", admin)
    approved = call("GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}&status=approved", admin)
    nobody = call("GET", f"/projects/{project_id}/tasks?assignee={other.user_id}", admin)

    # Then only this project's task reserved for the member is listed, by one Query and a get
    assert [t["task_id"] for t in listed.body["items"]] == [second], listed.body
    assert [t["task_id"] for t in queued_only.body["items"]] == [second]
    assert approved.body["items"] == [] and nobody.body["items"] == []
    assert first not in {t["task_id"] for t in listed.body["items"]}
    with metered() as requests:
        call("GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}", admin)
    assert requests.count("Query") == 1 and requests.count("BatchGetItem") == 1, requests


def test_a_cursor_of_another_assignee_is_refused(aws: Aws, admin: Actor) -> None:
    # Given a page cursor of one member's reservations
    chosen, other = person("u-cursor"), person("u-thief")
    project_id = project(admin)
    task_ids = queued(project_id, admin, 2)
    members(project_id, "annotator", chosen, other)
    for tid in task_ids:
        assert (
            call(
                "POST", f"/projects/{project_id}/tasks/{tid}/assign", admin, {"user_id": chosen.user_id}
            ).status
            == 200
        )
    page = call("GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}&limit=1", admin).body
    assert page["next_cursor"]

    # When it is replayed for another member / Then it is refused, not followed
    refused = call(
        "GET", f"/projects/{project_id}/tasks?assignee={other.user_id}&cursor={page['next_cursor']}", admin
    )
    assert refused.status == 422 and refused.body["error"]["code"] == "invalid_cursor"
    rest = call(
        "GET", f"/projects/{project_id}/tasks?assignee={chosen.user_id}&cursor={page['next_cursor']}", admin
    )
    assert len(rest.body["items"]) == 1 and rest.body["items"][0]["task_id"] != page["items"][0]["task_id"]
