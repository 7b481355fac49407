"""The task state machine for real on the local stack: label -> reject -> relabel -> approve -> exported.

Tasks are created over HTTP; the tasks stream, the events function, the bus rule and the
executions queue start each task's execution through the starter; moto's Step Functions
runs the ASL file with the workflow function in-process; annotators and reviewers
complete the waits through the API with real Cognito ID tokens.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import DevStack
from tests.e2e.flows import new_flow as _flow
from tests.e2e.flows import wait as _wait

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(dev_stack: DevStack) -> DevStack:
    """The e2e modules' shared stack: every flow makes its own project and task."""
    return dev_stack


def test_a_task_goes_label_reject_relabel_approve_exported(stack: DevStack) -> None:
    # Given a project (max 2 rework rounds) with one task created over HTTP
    flow = _flow(stack, "Workflow", {"max_rework_rounds": 2}, "great product")

    # When its execution has started and reached Label, the annotator leases and submits it
    flow.wait_status("queued", "the task to be queued by its execution")
    flow.label(flow.annotator)
    # And the reviewer rejects it
    flow.wait_status("in_review", "the task to reach review")
    flow.review({"decision": "reject", "comment": "again"})

    # Then it comes back to its annotator for rework, who relabels it; the reviewer approves
    flow.wait_status("queued", "the task to return for rework")
    flow.label(flow.annotator)
    flow.wait_status("in_review", "the task to reach review again")
    flow.review({"decision": "approve"})

    # Then the task ends exported, and its execution succeeded through exactly those states
    flow.wait_status("exported", "the task to be exported")
    assert flow.execution_states("SUCCEEDED") == [
        "Entry",
        "AutoLabelPassThrough",
        "Route",
        "RouteChoice",
        "Label",
        "LabelChoice",
        "Review",
        "ReviewChoice",
        "CountRework",
        "ReworkChoice",
        "Label",
        "LabelChoice",
        "Review",
        "ReviewChoice",
        "ExportRecord",
        "EmitCompleted",
        "Done",
    ]
    stats = flow.api.call(flow.admin, "GET", f"/projects/{flow.pid}/stats")[1]
    assert stats["by_status"]["exported"] == 1
    assert stats["review"]["rejection_rate"] == 0.5

    # And a decision on the finished review is refused, not applied twice
    again = flow.api.call(flow.reviewer, "POST", f"{flow.task_path}/review", {"decision": "approve"})
    assert again[0] == 409


def test_annotators_who_agree_are_accepted_by_consensus_without_review(stack: DevStack) -> None:
    # Given an overlap-2 project whose two labellers (the demo annotator and reviewer) are members
    flow = _flow(stack, "Consensus", {"overlap": 2}, "fine")

    # When both label it the same
    flow.wait_status("queued", "the task to be queued by its execution")
    flow.label(flow.annotator)
    flow.label(flow.reviewer)

    # Then, with no review, the task ends exported through AcceptConsensus
    flow.wait_status("exported", "the task to be exported")
    assert flow.execution_states("SUCCEEDED") == [
        "Entry",
        "AutoLabelPassThrough",
        "Route",
        "RouteChoice",
        "Label",
        "LabelChoice",
        "AcceptConsensus",
        "ExportRecord",
        "EmitCompleted",
        "Done",
    ]
    # And the annotators report counts the round's agreement for both
    api = flow.api
    status, report = api.call(flow.admin, "GET", f"/projects/{flow.pid}/annotators")
    assert status == 200, report
    rounds = {
        row["user_id"]: (row["agreement_rounds"], row["mean_agreement"]) for row in report["annotators"]
    }
    assert rounds == {api.ids[flow.annotator]: (1, 1.0), api.ids[flow.reviewer]: (1, 1.0)}


def test_deleting_a_task_that_waits_in_label_ends_its_execution(stack: DevStack) -> None:
    # Given a task whose execution waits in Label
    flow = _flow(stack, "Deleted", {}, "to be deleted")
    flow.wait_status("queued", "the task to be queued by its execution")

    # When a manager deletes it
    assert flow.api.call(flow.admin, "DELETE", flow.task_path)[0] == 204

    # Then its waiting step fails with TaskDeleted and the execution ends in Deleted (succeeded)
    assert flow.execution_states("SUCCEEDED") == [
        "Entry",
        "AutoLabelPassThrough",
        "Route",
        "RouteChoice",
        "Label",
        "Deleted",
    ]
    # And the task is gone from the project's counts
    assert flow.api.call(flow.admin, "GET", f"/projects/{flow.pid}/stats")[1]["tasks"] == 0


def test_a_bulk_requeue_sends_a_task_in_review_back_to_label_without_a_rework_round(stack: DevStack) -> None:
    # Given a task labelled and waiting in Review
    flow = _flow(stack, "Requeue", {"max_rework_rounds": 0}, "send it back")
    flow.wait_status("queued", "the task to be queued by its execution")
    flow.label(flow.annotator)
    flow.wait_status("in_review", "the task to reach review")

    # When a manager requeues it with a bulk job
    body = {"operation": "requeue", "selection": {"task_ids": [flow.tid]}}
    status, job = flow.api.call(flow.admin, "POST", f"/projects/{flow.pid}/bulk", body)
    assert status == 202, job

    def finished() -> Any:
        view = flow.api.call(flow.admin, "GET", f"/projects/{flow.pid}/bulk/{job['job_id']}")[1]
        return view if view["status"] in ("succeeded", "failed") else None

    view = _wait("the bulk job to finish", finished)
    assert (view["status"], view["counts"]) == ("succeeded", {"done": 1, "failed": 0}), view

    # Then it is labelled again and approved: no rework round was counted (the maximum is 0)
    flow.wait_status("queued", "the task to come back to the label queue")
    flow.label(flow.annotator)
    flow.wait_status("in_review", "the task to reach review again")
    flow.review({"decision": "approve"})
    flow.wait_status("exported", "the task to be exported")
    assert flow.execution_states("SUCCEEDED") == [
        "Entry",
        "AutoLabelPassThrough",
        "Route",
        "RouteChoice",
        "Label",
        "LabelChoice",
        "Review",
        "ReviewChoice",
        "Label",
        "LabelChoice",
        "Review",
        "ReviewChoice",
        "ExportRecord",
        "EmitCompleted",
        "Done",
    ]
