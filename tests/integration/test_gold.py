"""Gold tasks and the annotators report on moto: marked by managers, mixed into /next, scored."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import tasks
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


def _said(label: str) -> dict[str, Any]:
    return {"results": [{"control": "sentiment", "type": "classification", "labels": [label]}]}


def _gold(project_id: str, task_id: str, who: Actor, label: str = "pos") -> Any:
    return call("PUT", f"/projects/{project_id}/tasks/{task_id}/gold", who, _said(label))


def _report(project_id: str, who: Actor) -> dict[str, dict[str, Any]]:
    response = call("GET", f"/projects/{project_id}/annotators", who)
    assert response.status == 200, response.body
    return {row["user_id"]: row for row in response.body["annotators"]}


def test_gold_tasks_are_offered_at_the_gold_rate_scored_and_never_complete_a_step(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a project that always offers gold first, one gold task (answer "pos") and one ordinary
    project_id = project(admin, gold_rate=1.0)
    gold_id, plain_id = queued(project_id, admin, 2)
    marked = _gold(project_id, gold_id, admin)
    assert marked.status == 200, marked.body
    assert marked.body["gold"] is True and marked.body["results"][0]["labels"] == ["pos"]
    assert keys.gold_gsi1pk(project_id) == tasks.get_item(project_id, gold_id).GSI1PK
    right, wrong = person("u-g1"), person("u-g2")
    members(project_id, "annotator", right, wrong)

    # When two annotators each lease: both get the gold task first (nobody else leases it by then)
    first = lease(project_id, right)["task"]
    assert first["task_id"] == gold_id
    assert call("POST", f"/projects/{project_id}/tasks/{gold_id}/heartbeat", right).status == 200
    assert submit(project_id, gold_id, right, _said("pos")).status == 200
    assert lease(project_id, wrong)["task"]["task_id"] == gold_id
    assert submit(project_id, gold_id, wrong, _said("neg")).status == 200

    # Then the next lease of each is the ordinary task (a gold task is answered once per person)
    assert lease(project_id, right)["task"]["task_id"] == plain_id
    # And no workflow step completed, and the gold task is still gold and not in the queue
    assert steps.sent == []
    item = tasks.get_item(project_id, gold_id)
    assert item.status == "queued" and sorted(item.gold_answered_by) == ["u-g1", "u-g2"]
    assert keys.gold_gsi1pk(project_id) == item.GSI1PK

    # And the annotators report shows their gold accuracy and annotations
    report = _report(project_id, admin)
    assert report["u-g1"]["gold_answered"] == 1 and report["u-g1"]["gold_accuracy"] == 1.0
    assert report["u-g2"]["gold_answered"] == 1 and report["u-g2"]["gold_accuracy"] == 0.0
    assert report["u-g1"]["annotations"] == 1 and report["u-g1"]["active_days"] == 1


def test_without_a_gold_rate_gold_tasks_are_never_offered(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given one gold task only, and the default gold rate 0
    project_id = project(admin)
    (gold_id,) = queued(project_id, admin, 1)
    assert _gold(project_id, gold_id, admin).status == 200
    ann = person("u-n1")
    members(project_id, "annotator", ann)

    # When an annotator asks for work, Then there is none
    assert lease(project_id, ann)["task"] is None

    # When the manager unmarks it, Then it is back in the queue, and its step completes on submit
    back = call("DELETE", f"/projects/{project_id}/tasks/{gold_id}/gold", admin)
    assert back.status == 200 and back.body["gold"] is False
    assert lease(project_id, ann)["task"]["task_id"] == gold_id
    assert submit(project_id, gold_id, ann).status == 200
    assert [t for t, _ in steps.sent] == [f"tok-{gold_id}"]


def test_only_managers_mark_gold_and_only_queued_or_new_unleased_tasks(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a leased task and an annotator
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann = person("u-m1")
    members(project_id, "annotator", ann)
    lease(project_id, ann)

    # When the annotator tries to mark gold, Then 403; a manager on the leased task: 409
    assert _gold(project_id, task_id, ann).status == 403
    assert _gold(project_id, task_id, admin).status == 409
    # And results that do not fit the label config: 422
    bad = call(
        "PUT",
        f"/projects/{project_id}/tasks/{task_id}/gold",
        admin,
        {"results": [{"control": "sentiment", "type": "classification", "labels": ["meh"]}]},
    )
    assert bad.status == 422


def test_a_gold_task_started_later_by_the_workflow_stays_out_of_the_queue(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a new task (no execution yet) marked gold
    project_id = project(admin, gold_rate=0.0)
    response = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "x"}}])
    (task_id,) = response.body["task_ids"]
    assert _gold(project_id, task_id, admin).status == 200

    # When its execution reaches Label, Then it keeps the token but stays in the gold partition
    queue.enter_label(project_id, task_id, token="tok-late", rework=0)
    item = tasks.get_item(project_id, task_id)
    assert item.label_token == "tok-late" and keys.gold_gsi1pk(project_id) == item.GSI1PK
    ann = person("u-l1")
    members(project_id, "annotator", ann)
    assert lease(project_id, ann)["task"] is None
