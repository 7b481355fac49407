"""Consensus on moto: agreement of an overlap round routes the task to review or accepts it."""

from __future__ import annotations

from typing import Any

from serval.adapters import dynamo, quality, tasks
from serval.domain.actor import Actor
from serval.logic import queue, workflow
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


def _said(label: str) -> dict[str, Any]:
    return {"results": [{"control": "sentiment", "type": "classification", "labels": [label]}]}


def _round(project_id: str, task_id: str, people: list[Actor], labels: list[str]) -> None:
    for who, label in zip(people, labels, strict=True):
        assert lease(project_id, who)["task"]["task_id"] == task_id
        assert submit(project_id, task_id, who, _said(label)).status == 200


def _counters(project_id: str) -> dict[str, quality.QualityCounters]:
    return {row.user_id: row for row in quality.read_all(project_id)}


def test_annotators_who_agree_skip_review_and_the_task_is_accepted_by_consensus(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given an overlap-2 project (threshold 0.8) and one queued task
    project_id = project(admin, overlap=2)
    (task_id,) = queued(project_id, admin, 1)
    people = [person("u-c1"), person("u-c2")]
    members(project_id, "annotator", *people)

    # When both annotators give the same label
    _round(project_id, task_id, people, ["pos", "pos"])

    # Then the Label step completes with full agreement and no review needed
    ((token, output),) = steps.sent
    assert token == f"tok-{task_id}"
    assert output["agreement"] == 1.0 and output["needs_review"] is False
    assert len(output["annotation_ids"]) == 2
    # And the task keeps its agreement, and each annotator's quality counts it
    assert float(tasks.get_item(project_id, task_id).agreement) == 1.0
    counters = _counters(project_id)
    assert {u: (c.agreement_n, c.agreement_sum) for u, c in counters.items()} == {
        "u-c1": (1, 1.0),
        "u-c2": (1, 1.0),
    }

    # When the workflow runs AcceptConsensus, then ExportRecord (each twice: redelivered steps)
    for _ in range(2):
        workflow.run_step({"action": "accept_consensus", "project_id": project_id, "task_id": task_id})
    item = tasks.get_item(project_id, task_id)
    assert item.status == "approved" and item.accepted_by == "consensus"
    workflow.run_step({"action": "export_record", "project_id": project_id, "task_id": task_id})
    workflow.run_step({"action": "accept_consensus", "project_id": project_id, "task_id": task_id})

    # Then the task is exported and the counters moved through approved
    assert tasks.get_item(project_id, task_id).status == "exported"
    counts = dynamo.read_counters(project_id)
    assert counts["exported"] == 1 and counts["approved"] == 0 and counts["submitted"] == 0


def test_annotators_who_disagree_send_the_task_to_review(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given an overlap-2 project and one task
    project_id = project(admin, overlap=2, agreement_threshold=0.6)
    (task_id,) = queued(project_id, admin, 1)
    people = [person("u-d1"), person("u-d2")]
    members(project_id, "annotator", *people)

    # When the two annotators disagree (majority share 1/2)
    _round(project_id, task_id, people, ["pos", "neg"])

    # Then the step asks for review with agreement 0.5, stored on the task and in both counters
    ((_, output),) = steps.sent
    assert output["agreement"] == 0.5 and output["needs_review"] is True
    assert float(tasks.get_item(project_id, task_id).agreement) == 0.5
    assert {c.agreement_sum for c in _counters(project_id).values()} == {0.5}


def test_with_overlap_one_every_task_needs_review(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given an overlap-1 project
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann = person("u-s1")
    members(project_id, "annotator", ann)

    # When the annotator submits
    _round(project_id, task_id, [ann], ["pos"])

    # Then the task goes to review, with no agreement computed or counted
    ((_, output),) = steps.sent
    assert output["needs_review"] is True and output["agreement"] is None
    assert tasks.get_item(project_id, task_id).agreement is None
    assert _counters(project_id) == {}


def test_a_review_rejection_counts_for_each_annotator_of_the_round(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given an overlap-2 task labelled by two annotators and put into review
    project_id = project(admin, overlap=2)
    (task_id,) = queued(project_id, admin, 1)
    people = [person("u-r1"), person("u-r2")]
    reviewer = person("u-rv", "reviewer")
    members(project_id, "annotator", *people)
    members(project_id, "reviewer", reviewer)
    _round(project_id, task_id, people, ["pos", "neg"])
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")

    # When the reviewer rejects it
    assert call("POST", f"/projects/{project_id}/review/next", reviewer).status == 200
    body = {"decision": "reject", "comment": "no"}
    assert call("POST", f"/projects/{project_id}/tasks/{task_id}/review", reviewer, body).status == 200

    # Then both annotators have one review rejection; the reviewer has none
    counters = _counters(project_id)
    assert {u: c.review_rejections for u, c in counters.items()} == {"u-r1": 1, "u-r2": 1}
