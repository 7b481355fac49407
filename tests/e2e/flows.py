"""A project of the demo users with one task, driven over HTTP through its workflow (the e2e
workflow modules share it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.local.seed import DEMO_USERS
from tests.e2e.conftest import DevStack, http, wait_for
from tests.e2e.conftest import aws_client as _aws

LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}
POSITIVE = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}


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


def wait(what: str, check: Callable[[], Any], timeout_s: float = 60) -> Any:
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

        wait(what, reached)

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
        wait(
            f"the execution to end {status}",
            lambda: sfn.describe_execution(executionArn=arn)["status"] == status,
        )
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def new_flow(stack: DevStack, name: str, settings: dict[str, Any], text: str) -> Flow:
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
