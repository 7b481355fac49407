"""The task state machine for real on the local stack: label -> reject -> relabel -> approve -> exported.

Tasks are created over HTTP; the tasks stream, the events function, the bus rule and the
executions queue start each task's execution through the starter; moto's Step Functions
runs the ASL file with the workflow function in-process; annotators and reviewers
complete the waits through the API with real Cognito ID tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from infra.local.seed import DEMO_USERS
from infra.local.stack import local_spec
from serval import keys
from tests.e2e.conftest import DevStack, http, start_dev_stack, wait_for
from tests.e2e.conftest import aws_client as _aws

pytestmark = pytest.mark.e2e
LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}
POSITIVE = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    running = start_dev_stack(tmp_path_factory.mktemp("workflow-state"))
    try:
        yield running
    finally:
        running.stop()


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

    def execution_states(self, status: str, name: str | None = None) -> list[str]:
        """The states the task's execution (or the one called ``name``) entered, once it ended in ``status``."""
        sfn = _aws(self.stack, "stepfunctions")
        machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-task"))
        arn = next(
            e["executionArn"]
            for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
            if e["name"] == (name or self.tid)
        )
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
            r"Resuming the executions of (\d+) tasks that waited in Label or Review", second.text()
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
