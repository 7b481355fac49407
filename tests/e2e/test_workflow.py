"""The task state machine for real on the local stack: label -> reject -> relabel -> approve -> exported.

Tasks are created over HTTP; the tasks stream, the events function, the bus rule and the
executions queue start each task's execution through the starter; moto's Step Functions
runs the ASL file with the workflow function in-process; annotators and reviewers
complete the waits through the API with real Cognito ID tokens.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from infra.local.seed import DEMO_USERS
from tests.e2e.conftest import DevStack, start_dev_stack

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


def _aws(stack: DevStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


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
        request = urllib.request.Request(
            self.stack.api_url + path,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.tokens[who]}"},
            data=json.dumps(body).encode() if body is not None else None,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None


def _wait(what: str, check: Callable[[], Any], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_task_goes_label_reject_relabel_approve_exported(stack: DevStack) -> None:
    # Given the demo admin, annotator and reviewer
    api = Api(stack)
    users = {u.role: u for u in DEMO_USERS if u.role in ("admin", "annotator", "reviewer")}
    for user in users.values():
        api.sign_in(user.email, user.password)
    admin, annotator, reviewer = (users[r].email for r in ("admin", "annotator", "reviewer"))

    # And a project whose annotator and reviewer are members, with one task created over HTTP
    body = {
        "name": "Workflow",
        "media_types": ["text"],
        "label_config": LABELS,
        "settings": {"max_rework_rounds": 2},
    }
    status, project = api.call(admin, "POST", "/projects", body)
    assert status == 201, project
    pid = project["project_id"]
    for who, role in ((annotator, "annotator"), (reviewer, "reviewer")):
        assert api.call(admin, "GET", f"/users/{api.ids[who]}")[0] == 200
        assert (
            api.call(admin, "POST", f"/projects/{pid}/members", {"user_id": api.ids[who], "role": role})[0]
            == 201
        )
    status, created = api.call(admin, "POST", f"/projects/{pid}/tasks", [{"data": {"text": "great product"}}])
    assert status == 201, created
    [tid] = created["task_ids"]

    def status_is(expected: str) -> Callable[[], bool]:
        return lambda: api.call(admin, "GET", f"/projects/{pid}/tasks/{tid}")[1]["status"] == expected

    # When its execution has started and reached Label, the annotator leases and submits it
    _wait("the task to be queued by its execution", status_is("queued"))
    status, lease = api.call(annotator, "POST", f"/projects/{pid}/next")
    assert (status, lease["task"]["task_id"]) == (200, tid)
    assert api.call(annotator, "POST", f"/projects/{pid}/tasks/{tid}/submit", POSITIVE)[0] == 200

    # And the reviewer rejects it
    _wait("the task to reach review", status_is("in_review"))
    status, review = api.call(reviewer, "POST", f"/projects/{pid}/review/next")
    assert (status, review["task"]["task_id"]) == (200, tid)
    rejected = api.call(
        reviewer, "POST", f"/projects/{pid}/tasks/{tid}/review", {"decision": "reject", "comment": "again"}
    )
    assert rejected[0] == 200, rejected

    # Then it comes back to its annotator for rework, who relabels it; the reviewer approves
    _wait("the task to return for rework", status_is("queued"))
    status, lease = api.call(annotator, "POST", f"/projects/{pid}/next")
    assert (status, lease["task"]["task_id"]) == (200, tid)
    assert api.call(annotator, "POST", f"/projects/{pid}/tasks/{tid}/submit", POSITIVE)[0] == 200
    _wait("the task to reach review again", status_is("in_review"))
    assert api.call(reviewer, "POST", f"/projects/{pid}/review/next")[1]["task"]["task_id"] == tid
    approved = api.call(reviewer, "POST", f"/projects/{pid}/tasks/{tid}/review", {"decision": "approve"})
    assert approved[0] == 200, approved

    # Then the task ends exported, and its execution succeeded through exactly those states
    _wait("the task to be exported", status_is("exported"))
    sfn = _aws(stack, "stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-task"))
    execution = next(
        e
        for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        if e["name"] == tid
    )
    _wait(
        "the execution to succeed",
        lambda: sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED",
    )
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == [
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
    # And the project's window slot was given back
    stats = api.call(admin, "GET", f"/projects/{pid}/stats")[1]
    assert stats["by_status"]["exported"] == 1

    # And a decision on the finished review is refused, not applied twice
    again = api.call(reviewer, "POST", f"/projects/{pid}/tasks/{tid}/review", {"decision": "approve"})
    assert again[0] == 409


def test_annotators_who_agree_are_accepted_by_consensus_without_review(stack: DevStack) -> None:
    # Given an overlap-2 project whose two labellers (the demo annotator and reviewer) are members
    api = Api(stack)
    users = {u.role: u for u in DEMO_USERS if u.role in ("admin", "annotator", "reviewer")}
    for user in users.values():
        api.sign_in(user.email, user.password)
    admin, annotator, reviewer = (users[r].email for r in ("admin", "annotator", "reviewer"))
    body = {"name": "Consensus", "media_types": ["text"], "label_config": LABELS, "settings": {"overlap": 2}}
    status, project = api.call(admin, "POST", "/projects", body)
    assert status == 201, project
    pid = project["project_id"]
    for who, role in ((annotator, "annotator"), (reviewer, "reviewer")):
        added = api.call(admin, "POST", f"/projects/{pid}/members", {"user_id": api.ids[who], "role": role})
        assert added[0] == 201, added
    status, created = api.call(admin, "POST", f"/projects/{pid}/tasks", [{"data": {"text": "fine"}}])
    assert status == 201, created
    [tid] = created["task_ids"]

    def status_is(expected: str) -> Callable[[], bool]:
        return lambda: api.call(admin, "GET", f"/projects/{pid}/tasks/{tid}")[1]["status"] == expected

    # When both label it the same
    _wait("the task to be queued by its execution", status_is("queued"))
    for who in (annotator, reviewer):
        status, lease = api.call(who, "POST", f"/projects/{pid}/next")
        assert (status, lease["task"]["task_id"]) == (200, tid)
        assert api.call(who, "POST", f"/projects/{pid}/tasks/{tid}/submit", POSITIVE)[0] == 200

    # Then, with no review, the task ends exported through AcceptConsensus
    _wait("the task to be exported", status_is("exported"))
    sfn = _aws(stack, "stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-task"))
    execution = next(
        e
        for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        if e["name"] == tid
    )
    _wait(
        "the execution to succeed",
        lambda: sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED",
    )
    history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == [
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
    status, report = api.call(admin, "GET", f"/projects/{pid}/annotators")
    assert status == 200, report
    rounds = {
        row["user_id"]: (row["agreement_rounds"], row["mean_agreement"]) for row in report["annotators"]
    }
    assert rounds == {api.ids[annotator]: (1, 1.0), api.ids[reviewer]: (1, 1.0)}
