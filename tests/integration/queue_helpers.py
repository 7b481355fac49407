"""Shared setup for the queue and review tests: a project, queued tasks, a captured workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from serval.adapters import workflow
from serval.domain.actor import Actor
from serval.errors import TaskTokenInvalid
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.people import enrol, join

LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]},
        {"name": "ents", "type": "ner", "classes": [{"name": "PER"}, {"name": "ORG"}]},
    ]
}
GOOD = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}


def person(user_id: str, group: str = "annotator") -> Actor:
    who = Actor(user_id=user_id, username=user_id, groups=(group,), request_id=f"req-{user_id}")
    enrol(who)
    return who


def project(admin: Actor, **settings: Any) -> str:
    body = {"name": "Q", "media_types": ["text"], "label_config": LABELS, "settings": settings}
    response = call("POST", "/projects", admin, body)
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def new_tasks(project_id: str, admin: Actor, specs: list[dict[str, Any]]) -> list[str]:
    response = call("POST", f"/projects/{project_id}/tasks", admin, specs)
    assert response.status == 201, response.body
    return list(response.body["task_ids"])


def queued(project_id: str, admin: Actor, n: int, text: str = "hello world") -> list[str]:
    task_ids = new_tasks(project_id, admin, [{"data": {"text": f"{text} {i}"}} for i in range(n)])
    for task_id in task_ids:
        queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    return task_ids


def members(project_id: str, role: str, *people: Actor) -> None:
    for who in people:
        join(project_id, who, role)


@dataclass
class Workflow:
    """The steps' tokens the logic completed; a used token completes nothing twice."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        if any(t == token for t, _ in self.sent):
            raise TaskTokenInvalid("already used", details={"reason": "InvalidToken"})
        self.sent.append((token, output))


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Workflow:
    captured = Workflow()
    monkeypatch.setattr(workflow, "send_success", captured.send_success)
    return captured


def lease(project_id: str, who: Actor) -> dict[str, Any]:
    response = call("POST", f"/projects/{project_id}/next", who)
    assert response.status == 200, response.body
    return dict(response.body)


def submit(project_id: str, task_id: str, who: Actor, body: Any = None) -> Any:
    return call("POST", f"/projects/{project_id}/tasks/{task_id}/submit", who, body or GOOD)
