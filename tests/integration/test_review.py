"""The review queue on moto: leases for reviewers, approve, reject, edit-and-approve, used tokens."""

from __future__ import annotations

import pytest

from serval.adapters import dynamo, tasks
from serval.domain.actor import Actor
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import (
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


def _labelled(admin: Actor, ann: Actor, reviewer: Actor, ann_role: str = "annotator") -> tuple[str, str]:
    """A project whose one task was labelled by ``ann`` and put into review by the workflow."""
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    members(project_id, ann_role, ann)
    members(project_id, "reviewer", reviewer)
    lease(project_id, ann)
    assert submit(project_id, task_id, ann).status == 200
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
    return project_id, task_id


def _review_next(project_id: str, who: Actor) -> str | None:
    response = call("POST", f"/projects/{project_id}/review/next", who)
    assert response.status == 200, response.body
    task = response.body["task"]
    return None if task is None else str(task["task_id"])


def _decide(project_id: str, task_id: str, who: Actor, body: dict[str, object]) -> object:
    return call("POST", f"/projects/{project_id}/tasks/{task_id}/review", who, body)


@pytest.fixture
def people() -> tuple[Actor, Actor]:
    return person("u-ann"), person("u-rev", "reviewer")


def test_a_reviewer_approves_and_the_review_step_completes(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given a labelled task in review
    ann, reviewer = people
    project_id, task_id = _labelled(admin, ann, reviewer)
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")  # a redelivered step: no-op

    # When the reviewer leases and approves it
    assert _review_next(project_id, reviewer) == task_id
    assert _review_next(project_id, reviewer) is None  # leased: nothing else
    answer = _decide(project_id, task_id, reviewer, {"decision": "approve", "comment": "fine"})

    # Then it is approved, the Review step got the decision, and counters follow
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "approved"
    assert steps.sent[-1] == (f"rev-{task_id}", {"decision": "approved", "comment": "fine"})
    counts = dynamo.read_counters(project_id)
    assert (counts["approved"], counts["in_review"], counts["submitted"]) == (1, 0, 0)
    # And the ExportRecord step marks it exported (twice is harmless)
    queue.mark_exported(project_id, task_id)
    queue.mark_exported(project_id, task_id)
    assert tasks.get_item(project_id, task_id).status == "exported"
    assert dynamo.read_counters(project_id)["exported"] == 1


def test_a_rejected_task_goes_back_to_its_annotator_first(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given a labelled task in review, and another annotator
    ann, reviewer = people
    project_id, task_id = _labelled(admin, ann, reviewer)
    other = person("u-other")
    members(project_id, "annotator", other)

    # When the reviewer rejects it and the workflow sends it back to labelling (rework 1)
    assert _review_next(project_id, reviewer) == task_id
    answer = _decide(project_id, task_id, reviewer, {"decision": "reject", "comment": "wrong"})
    assert answer.status == 200 and answer.body["status"] == "rejected"
    assert steps.sent[-1] == (f"rev-{task_id}", {"decision": "rejected", "comment": "wrong"})
    queue.enter_label(project_id, task_id, token=f"tok2-{task_id}", rework=1)

    # Then it is offered to its annotator, not to the other one
    assert lease(project_id, other)["task"] is None
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert tasks.get_item(project_id, task_id).rework == 1


def test_edit_and_approve_keeps_the_reviewers_version(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given a labelled task in review
    ann, reviewer = people
    project_id, task_id = _labelled(admin, ann, reviewer)
    assert _review_next(project_id, reviewer) == task_id

    # When the reviewer approves with corrected results (a bad edit is refused first)
    bad = {
        "decision": "approve",
        "results": [{"control": "sentiment", "type": "classification", "labels": ["x"]}],
    }
    assert _decide(project_id, task_id, reviewer, bad).status == 422
    edit = [{"control": "sentiment", "type": "classification", "labels": ["neg"]}]
    answer = _decide(project_id, task_id, reviewer, {"decision": "approve", "results": edit})

    # Then the edit is a new annotation by the reviewer, next to the annotator's
    assert answer.status == 200, answer.body
    assert answer.body["annotation"]["author"] == reviewer.user_id
    authors = sorted(a.author for a in queue.annotations_of(project_id, task_id))
    assert authors == sorted([ann.user_id, reviewer.user_id])
    assert tasks.get_item(project_id, task_id).status == "approved"


def test_a_second_decision_is_refused(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given an approved task
    ann, reviewer = people
    project_id, task_id = _labelled(admin, ann, reviewer)
    _review_next(project_id, reviewer)
    assert _decide(project_id, task_id, reviewer, {"decision": "approve"}).status == 200

    # When the reviewer decides again
    again = _decide(project_id, task_id, reviewer, {"decision": "reject"})
    # Then it is a 409
    assert again.status == 409

    # And when the task is reopened with the already-used token, the decision is a 409 task_token_invalid
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
    assert _review_next(project_id, reviewer) == task_id
    used = _decide(project_id, task_id, reviewer, {"decision": "approve"})
    assert (used.status, used.body["error"]["code"]) == (409, "task_token_invalid")


def test_annotators_cannot_review_their_own_task(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given a task labelled by a project reviewer (who may both label and review)
    _, reviewer = people
    labeller = person("u-both", "reviewer")
    project_id, task_id = _labelled(admin, labeller, reviewer, ann_role="reviewer")

    # When they ask for review work, and try to decide without a lease
    mine = _review_next(project_id, labeller)
    refused = _decide(project_id, task_id, labeller, {"decision": "approve"})

    # Then they get nothing, and the decision is refused
    assert mine is None
    assert (refused.status, refused.body["error"]["code"]) == (409, "lease_not_held")
    # And annotators may not use the review queue at all
    assert call("POST", f"/projects/{project_id}/review/next", person("u-plain")).status == 404


def test_a_review_lease_is_extended_released_and_skipped_like_a_labelling_lease(
    aws: Aws, admin: Actor, steps: Workflow, people: tuple[Actor, Actor]
) -> None:
    # Given a task in review, leased by a reviewer, and a second reviewer
    ann, reviewer = people
    other = person("u-rev2", "reviewer")
    project_id, task_id = _labelled(admin, ann, reviewer)
    members(project_id, "reviewer", other)
    lease = call("POST", f"/projects/{project_id}/review/next", reviewer).body
    path = f"/projects/{project_id}/tasks/{task_id}"

    # When the holder sends a heartbeat, their lease is extended; anyone else is refused
    beat = call("POST", f"{path}/heartbeat", reviewer)
    assert beat.status == 200, beat.body
    assert beat.body["lease_until"] >= lease["lease_until"]
    assert int(tasks.get_item(project_id, task_id).lease_until) == beat.body["lease_until"]
    refused = call("POST", f"{path}/heartbeat", other)
    assert (refused.status, refused.body["error"]["code"]) == (409, "lease_not_held")
    assert _review_next(project_id, other) is None  # still leased

    # When the holder releases it, the other reviewer gets it at once, still in review
    released = call("POST", f"{path}/release", reviewer)
    assert (released.status, released.body["status"]) == (200, "in_review")
    assert _review_next(project_id, other) == task_id

    # When the other reviewer skips it, it is never offered to them again, but to the first
    assert call("POST", f"{path}/skip", other).status == 200
    assert _review_next(project_id, other) is None
    assert _review_next(project_id, reviewer) == task_id
    # And the holder's decision still completes the Review step
    assert _decide(project_id, task_id, reviewer, {"decision": "approve"}).status == 200
    assert steps.sent[-1][0] == f"rev-{task_id}"
