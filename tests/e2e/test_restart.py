"""Step Functions executions over a restart of the local stack: the tasks that waited in Label
or Review get re-created executions, and their humans lease, submit and review as before."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from infra.local.seed import DEMO_USERS
from infra.local.stack import local_spec
from serval import keys
from tests.e2e.conftest import DevStack, start_dev_stack
from tests.e2e.conftest import aws_client as _aws
from tests.e2e.flows import Api, Flow
from tests.e2e.flows import new_flow as _flow
from tests.e2e.flows import wait as _wait

pytestmark = pytest.mark.e2e


def _task_item(flow: Flow) -> dict[str, Any]:
    """The task's item in the stack's tasks table (its workflow attributes never leave the table)."""
    name = local_spec().tables["tasks"].name
    key = {keys.PK: {"S": keys.project_pk(flow.pid)}, keys.SK: {"S": keys.task_sk(flow.tid)}}
    return dict(_aws(flow.stack, "dynamodb").get_item(TableName=name, Key=key, ConsistentRead=True)["Item"])


def _open_executions(flow: Flow) -> int:
    """What the project's active window counts as open executions."""
    name = local_spec().tables["tasks"].name
    key = {keys.PK: {"S": keys.project_pk(flow.pid)}, keys.SK: {"S": keys.WINDOW_SK}}
    item = _aws(flow.stack, "dynamodb").get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    return int(item["open"]["N"])


def _on(stack: DevStack, flow: Flow) -> Flow:
    """The same project and task, driven on another run of the stack (the users sign in again)."""
    api = Api(stack)
    for user in DEMO_USERS:
        if user.email in flow.api.tokens:
            api.sign_in(user.email, user.password)
    return replace(flow, stack=stack, api=api)


def test_tasks_waiting_in_label_and_review_get_their_executions_back_after_a_restart(tmp_path: Path) -> None:
    # Given a stack with one task waiting in Label and one waiting in Review
    first = start_dev_stack(tmp_path)
    try:
        to_label = _flow(first, "Restart label", {}, "label me after the restart")
        to_review = _flow(first, "Restart review", {}, "review me after the restart")
        to_label.wait_status("queued", "the first task to be queued by its execution")
        to_review.wait_status("queued", "the second task to be queued by its execution")
        to_review.label(to_review.annotator)
        to_review.wait_status("in_review", "the second task to reach review")
        before = {flow.tid: _task_item(flow) for flow in (to_label, to_review)}
    finally:
        # When it is stopped with Ctrl-C (it saves its state) and started again on the same data
        assert first.stop() == 0
    assert "Saved to" in first.text()
    second = start_dev_stack(tmp_path)
    try:
        to_label, to_review = _on(second, to_label), _on(second, to_review)
        # (the demo project's tasks wait in Label too)
        resuming = re.search(
            r"Resuming the executions of (\d+) tasks? that waited in Label or Review", second.text()
        )
        assert resuming is not None and int(resuming[1]) >= 2, second.text()

        # Then each task's wait is taken over by a re-created execution, with a token of its own
        for flow, attribute in ((to_label, "label_token"), (to_review, "review_token")):

            def taken_over(flow: Flow = flow) -> bool:
                return _task_item(flow).get("execution_name", {}).get("S") == f"{flow.tid}-r1"

            _wait("the task's wait to be taken over by a new execution", taken_over)
            assert _task_item(flow)[attribute] != before[flow.tid][attribute]
        # And the window still counts one open execution per task
        assert (_open_executions(to_label), _open_executions(to_review)) == (1, 1)

        # And leasing and submitting the first task works (no 409): it moves on to review
        to_label.label(to_label.annotator)
        to_label.wait_status("in_review", "the resumed task to reach review")
        # And reviewing the second works: it is exported by its new execution, which gave its
        # window slot back once
        to_review.review({"decision": "approve"})
        to_review.wait_status("exported", "the resumed task to be exported")
        assert to_review.execution_states("SUCCEEDED", f"{to_review.tid}-r1") == [
            "Entry",
            "Review",
            "ReviewChoice",
            "ExportRecord",
            "EmitCompleted",
            "Done",
        ]
        assert _open_executions(to_review) == 0

        # And the console said what happened, in short lines: the resumes and the requests
        def resumed() -> int:
            return sum(
                int(n.replace(",", ""))
                for n in re.findall(r"^workflow: .*?([\d,]+) executions? resumed", second.text(), re.M)
            )

        _wait("the resumes on the console", lambda: resumed() == int(resuming[1]))
        assert f"POST /projects/{to_label.pid}/tasks/{to_label.tid}/submit 200" in second.text()
    finally:
        assert second.stop() == 0
