"""Re-created executions on moto's Step Functions, run for real (the workflow steps in-process):
a task whose execution ended while it waited in Label or Review gets a new one, straight back
into that wait, and the humans' submit and review complete it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from infra.local import patches
from serval.adapters import tasks, window
from serval.domain import executions
from serval.domain.actor import Actor
from serval.domain.lifecycle import WaitStep
from serval.errors import ValidationFailed
from serval.logic import workflow
from serval.settings import settings
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import lease, members, new_tasks, person, project, submit


@pytest.fixture
def machine(aws: Aws) -> Iterator[Any]:
    """The local stack's Lambda runtime behind moto (the workflow steps run in this process)."""
    with patches.installed():
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _eventually(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _executions(sfn: Any, task_id: str, status: str = "RUNNING") -> list[str]:
    listed = sfn.list_executions(stateMachineArn=settings().STATE_MACHINE_ARN, statusFilter=status)
    return sorted(e["name"] for e in listed["executions"] if e["name"].startswith(task_id))


def _restart(sfn: Any) -> None:
    """What a restart of the local stack does to Step Functions: the state machine is there
    again, its executions are not (every stored token answers nothing)."""
    arn = settings().STATE_MACHINE_ARN
    described = sfn.describe_state_machine(stateMachineArn=arn)
    sfn.delete_state_machine(stateMachineArn=arn)
    recreated = sfn.create_state_machine(
        name=described["name"],
        definition=described["definition"],
        roleArn=described["roleArn"],
        type=described["type"],
    )
    assert recreated["stateMachineArn"] == arn


def _waiting(project_id: str, task_id: str, attribute: str, not_token: str | None = None) -> Any:
    def ready() -> Any:
        item = tasks.get_item(project_id, task_id)
        token = getattr(item, attribute)
        return item if token and token != not_token else None

    return _eventually(f"the task's {attribute}", ready)


def test_an_ended_execution_is_re_created_in_label_then_in_review_and_the_humans_finish_it(
    machine: Any, admin: Actor
) -> None:
    # Given a task whose execution (started within the window) waits in Label
    ann, reviewer = person("u-ann"), person("u-rev", "reviewer")
    project_id = project(admin, max_rework_rounds=1)
    members(project_id, "annotator", ann)
    members(project_id, "reviewer", reviewer)
    (task_id,) = new_tasks(project_id, admin, [{"data": {"text": "hello"}}])
    assert workflow.start(executions.StartRequest(project_id, task_id)) == 1
    first = _waiting(project_id, task_id, "label_token")
    assert first.execution_name == task_id and window.open_count(project_id) == 1
    # And the annotator holds its lease when the execution is lost (the local stack restarts)
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    _restart(machine)

    # When it is resumed from the execution that issued its token
    request = executions.ResumeRequest(project_id, task_id, task_id)
    assert workflow.resume(request) is WaitStep.LABEL

    # Then a new execution waits in Label with a token of its own, the lease is kept, and the
    # window still counts one open execution
    item = _waiting(project_id, task_id, "label_token", not_token=first.label_token)
    assert (item.execution_name, item.status, item.lease_owner) == (f"{task_id}-r1", "leased", ann.user_id)
    assert window.open_count(project_id) == 1
    # And resuming the same ended execution again starts nothing
    assert workflow.resume(request) is None
    assert _executions(machine, task_id) == [f"{task_id}-r1"]

    # When the annotator submits, the new execution takes the task into Review
    assert submit(project_id, task_id, ann).status == 200
    in_review = _waiting(project_id, task_id, "review_token")
    assert (in_review.status, in_review.execution_name) == ("in_review", f"{task_id}-r1")
    # And that execution is lost too, with the reviewer holding the review lease
    assert call("POST", f"/projects/{project_id}/review/next", reviewer).status == 200
    _restart(machine)

    # When it is resumed (a request naming an older execution is ignored)
    assert workflow.resume(request) is None
    assert workflow.resume(executions.ResumeRequest(project_id, task_id, f"{task_id}-r1")) is WaitStep.REVIEW

    # Then the reviewer's approval completes the new Review wait and the task is exported
    resumed = _waiting(project_id, task_id, "review_token", not_token=in_review.review_token)
    assert (resumed.execution_name, resumed.reviewer) == (f"{task_id}-r2", reviewer.user_id)
    decision = call(
        "POST", f"/projects/{project_id}/tasks/{task_id}/review", reviewer, {"decision": "approve"}
    )
    assert decision.status == 200, decision.body
    _eventually("the task to be exported", lambda: tasks.get_item(project_id, task_id).status == "exported")
    # And its one open execution gave its window slot back, once
    _eventually(
        "the execution to end", lambda: _executions(machine, task_id, "SUCCEEDED") == [f"{task_id}-r2"]
    )
    assert window.open_count(project_id) == 0


def test_resume_requests_travel_the_executions_queue_and_name_one_successor_each() -> None:
    # Given a resume request, Then its executions-queue message parses back to it
    request = executions.ResumeRequest("p_1", "t_1", "t_1-r2")
    assert executions.parse_start_message(executions.resume_message(request)) == request
    # And a resume message without its fields is refused, not guessed
    for fields in (
        {},
        {"project_id": "p_1", "task_id": "t_1"},
        {"project_id": "p_1", "task_id": 3, "execution": "x"},
    ):
        with pytest.raises(ValidationFailed):
            executions.parse_start_message(json.dumps({"resume": fields}))
    # And each execution has one successor: the first one's is -r1, then -r2, ...
    assert executions.successor("t_1", "t_1") == "t_1-r1"
    assert executions.successor("t_1", "t_1-r1") == "t_1-r2"
    assert executions.successor("t_1", "t_1-r41") == "t_1-r42"
    # And a task whose wait predates the recorded name was started under its id
    assert executions.current_execution("t_1", None) == "t_1"
    assert executions.current_execution("t_1", "t_1-r3") == "t_1-r3"
