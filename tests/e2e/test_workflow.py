"""The task state machine for real on the local stack: label -> reject -> relabel -> approve -> exported.

Tasks are created over HTTP; the tasks stream, the events function, the bus rule and the
executions queue start each task's execution through the starter; moto's Step Functions
runs the ASL file with the workflow function in-process; annotators and reviewers
complete the waits through the API with real Cognito ID tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.seed import DEMO_USERS
from tests.e2e.conftest import DevStack, http, wait_for
from tests.e2e.conftest import aws_client as _aws

pytestmark = pytest.mark.e2e
LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}
POSITIVE = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}


@pytest.fixture(scope="module")
def stack(dev_stack: DevStack) -> DevStack:
    """The e2e modules' shared stack: every flow makes its own project and task."""
    return dev_stack


class Api:
    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        cognito = _aws(stack, "cognito-idp")
        pool = cognito.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
        self.pool = pool
        self.client = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0][
            "ClientId"
        ]
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def sign_in(self, email: str, password: str) -> None:
        cognito = _aws(self.stack, "cognito-idp")
        result = cognito.initiate_auth(
            ClientId=self.client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        self.tokens[email] = result["AuthenticationResult"]["IdToken"]
        user = cognito.admin_get_user(UserPoolId=self.pool, Username=email)
        self.ids[email] = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")

    def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(self.stack, method, path, self.tokens[who], body)


def _wait(what: str, check: Callable[[], Any], timeout_s: float = 60) -> Any:
    return wait_for(check, timeout_s, what)


@dataclass
class Flow:
    """A project of the demo users (admin; annotator and reviewer as members) with one task."""

    stack: DevStack
    api: Api
    admin: str
    annotator: str
    reviewer: str
    pid: str
    tid: str

    def wait_status(self, expected: str, what: str) -> None:
        def reached() -> bool:
            return bool(self.api.call(self.admin, "GET", self.task_path)[1]["status"] == expected)

        _wait(what, reached)

    @property
    def task_path(self) -> str:
        return f"/projects/{self.pid}/tasks/{self.tid}"

    def label(self, who: str) -> None:
        status, lease = self.api.call(who, "POST", f"/projects/{self.pid}/next")
        assert (status, lease["task"]["task_id"]) == (200, self.tid), lease
        assert self.api.call(who, "POST", f"{self.task_path}/submit", POSITIVE)[0] == 200

    def review(self, decision: dict[str, str]) -> None:
        status, review = self.api.call(self.reviewer, "POST", f"/projects/{self.pid}/review/next")
        assert (status, review["task"]["task_id"]) == (200, self.tid), review
        answer = self.api.call(self.reviewer, "POST", f"{self.task_path}/review", decision)
        assert answer[0] == 200, answer

    def execution_states(self, status: str) -> list[str]:
        """The states the task's execution entered, once it ended in ``status``."""
        sfn = _aws(self.stack, "stepfunctions")
        machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-task"))
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
        arn = next(e["executionArn"] for page in pages for e in page["executions"] if e["name"] == self.tid)
        _wait(
            f"the execution to end {status}",
            lambda: sfn.describe_execution(executionArn=arn)["status"] == status,
        )
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def _flow(stack: DevStack, name: str, settings: dict[str, Any], text: str) -> Flow:
    api = Api(stack)
    users = {u.role: u for u in DEMO_USERS if u.role in ("admin", "annotator", "reviewer")}
    for user in users.values():
        api.sign_in(user.email, user.password)
    admin, annotator, reviewer = (users[r].email for r in ("admin", "annotator", "reviewer"))
    body = {"name": name, "media_types": ["text"], "label_config": LABELS, "settings": settings}
    status, project = api.call(admin, "POST", "/projects", body)
    assert status == 201, project
    pid = project["project_id"]
    for who, role in ((annotator, "annotator"), (reviewer, "reviewer")):
        assert api.call(admin, "GET", f"/users/{api.ids[who]}")[0] == 200
        added = api.call(admin, "POST", f"/projects/{pid}/members", {"user_id": api.ids[who], "role": role})
        assert added[0] == 201, added
    status, created = api.call(admin, "POST", f"/projects/{pid}/tasks", [{"data": {"text": text}}])
    assert status == 201, created
    [tid] = created["task_ids"]
    return Flow(stack, api, admin, annotator, reviewer, pid, tid)


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
