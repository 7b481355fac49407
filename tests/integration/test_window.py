"""The active window: starts take a slot and mark the task, ends give it back once; a backlog waits."""

from __future__ import annotations

import json

import pytest

from bench.metering import metered
from serval.adapters import window
from serval.adapters import workflow as machine
from serval.domain import executions
from serval.domain.actor import Actor
from serval.errors import ValidationFailed
from serval.logic import queue, workflow
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import Aws
from tests.integration.test_api import _create_project


def _tasks(admin: Actor, project: str, n: int) -> list[str]:
    body = [{"data": {"text": f"t{i}"}} for i in range(n)]
    return list(call("POST", f"/projects/{project}/tasks", admin, body).body["task_ids"])


def test_slots_are_taken_once_per_task_and_given_back_once(aws: Aws, admin: Actor) -> None:
    # Given a project with three tasks and a window of two
    project = _create_project(admin)
    first, second, third = _tasks(admin, project, 3)

    # When three starts race for two slots, and the first start is redelivered
    claims = [window.take_slot(project, t, 2) for t in (first, second, third)]
    again = window.take_slot(project, first, 2)

    # Then two tasks hold the slots, the third waits in the backlog, a redelivery takes nothing
    assert claims == [window.Claim.TAKEN, window.Claim.TAKEN, window.Claim.FULL]
    assert again is window.Claim.ALREADY
    assert window.open_count(project) == 2
    assert window.backlog(project, 10) == [third]
    assert window.take_slot(project, "t_missing", 2) is window.Claim.GONE
    assert window.take_slot(project, second, 2) is window.Claim.ALREADY  # started, even with a full window

    # When the first execution ends, twice (a retried step), its slot comes back once
    assert window.release_slot(project, first) is True
    assert window.release_slot(project, first) is False
    assert window.open_count(project) == 1
    assert window.take_slot(project, third, 2) is window.Claim.TAKEN
    assert window.backlog(project, 10) == []
    assert window.take_slot(project, "t_missing", 3) is window.Claim.GONE


def test_executions_queue_messages_are_task_created_events_or_refills() -> None:
    event = {"detail-type": "task.created", "detail": {"project_id": "p_1", "data": {"task_id": "t_1"}}}
    assert executions.parse_start_message(json.dumps(event)) == executions.StartRequest("p_1", "t_1")
    assert executions.parse_start_message(json.dumps({"refill": "p_1"})) == executions.StartRequest(
        "p_1", None
    )
    for bad in ("not json", "[]", json.dumps({"detail-type": "task.deleted", "detail": {}})):
        with pytest.raises(ValidationFailed):
            executions.parse_start_message(bad)


def test_deleting_a_task_with_an_open_execution_gives_its_slot_back(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two started tasks (one waiting in Label with a step token) and one never started
    project = _create_project(admin)
    started, ended, waiting = _tasks(admin, project, 3)
    assert window.take_slot(project, started, 5) is window.Claim.TAKEN
    assert window.take_slot(project, ended, 5) is window.Claim.TAKEN
    assert window.release_slot(project, ended) is True
    assert window.open_count(project) == 1
    queue.enter_label(project, started, token="tok-started", rework=0)
    failed: list[tuple[str, str]] = []
    monkeypatch.setattr(
        machine, "send_failure", lambda token, error, cause: failed.append((token, error)) or True
    )

    # When all three are deleted
    for task in (started, ended, waiting):
        assert call("DELETE", f"/projects/{project}/tasks/{task}", admin).status == 204

    # Then only the open execution's slot came back, once
    assert window.open_count(project) == 0
    # And its waiting step was failed with TaskDeleted (the state machine ends in Deleted)
    assert failed == [("tok-started", workflow.TASK_DELETED)]
    # And one refill of the project's window was asked of the starter
    got = aws.sqs.receive_message(QueueUrl=aws.env["EXECUTIONS_QUEUE_URL"], MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in got.get("Messages", [])] == [{"refill": project}]


def test_a_deleted_tasks_step_that_no_longer_waits_is_not_an_error(aws: Aws) -> None:
    # Given a token of a step that does not wait (moto's Step Functions knows no such token)
    # Then failing it reports that nothing waited, and raises nothing
    assert machine.send_failure("not-a-waiting-token", workflow.TASK_DELETED, "gone") is False


def test_a_delete_retries_when_the_workflow_moves_the_task_meanwhile(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task whose version changes between the delete's read and its write (once)
    from serval.adapters import tasks as task_store
    from serval.adapters.clients import dynamodb

    project = _create_project(admin)
    [task] = _tasks(admin, project, 1)
    real = task_store.get_item
    moved = []

    def read_then_move(project_id: str, task_id: str) -> object:
        item = real(project_id, task_id)
        if not moved:
            moved.append(task_id)
            dynamodb().update_item(
                TableName=aws.env["TASKS_TABLE"],
                Key={"PK": {"S": f"PROJECT#{project_id}"}, "SK": {"S": f"TASK#{task_id}"}},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        return item

    monkeypatch.setattr(task_store, "get_item", read_then_move)

    # When it is deleted
    answer = call("DELETE", f"/projects/{project}/tasks/{task}", admin)

    # Then the delete read it again and succeeded
    assert answer.status == 204
    assert moved == [task]


def test_a_refill_starts_backlog_tasks_into_free_slots_and_reads_little_when_there_are_none(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a window of 2, and a project with 3 tasks of which 2 hold the slots
    monkeypatch.setenv("ACTIVE_WINDOW", "2")
    project = _create_project(admin)
    first, second, third = _tasks(admin, project, 3)
    started: list[str] = []
    monkeypatch.setattr(machine, "start", lambda arn, task_id, payload: started.append(task_id) or True)
    assert workflow.start(executions.StartRequest(project, first)) == 1
    assert workflow.start(executions.StartRequest(project, second)) == 1
    assert workflow.start(executions.StartRequest(project, third)) == 0  # full: it waits in the backlog

    # When a refill comes while the window is full, it reads only the window
    with metered() as calls:
        assert workflow.start(executions.StartRequest(project, None)) == 0
    assert calls.calls == {"dynamodb:GetItem": 1}

    # When an execution ends and gives its slot back, a refill starts the backlog task
    assert window.release_slot(project, first) is True
    assert workflow.start(executions.StartRequest(project, None)) == 1
    assert started == [first, second, third]

    # And with a free slot but an empty backlog, a refill reads the window and the backlog only
    assert window.release_slot(project, second) is True
    with metered() as calls:
        assert workflow.start(executions.StartRequest(project, None)) == 0
    assert calls.calls == {"dynamodb:GetItem": 1, "dynamodb:Query": 1}


def _created_messages(project: str, task_ids: list[str]) -> list[dict[str, object]]:
    """``task.created`` events as the bus routes them to the starter's queue."""
    return [
        {
            "messageId": f"m{i}",
            "receiptHandle": f"r{i}",
            "body": json.dumps(
                {
                    "detail-type": "task.created",
                    "detail": {"project_id": project, "data": {"task_id": task_id}},
                }
            ),
            "attributes": {},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }
        for i, task_id in enumerate(task_ids)
    ]


@pytest.mark.parametrize(("window_size", "starts", "transactions"), [(100, 10, 10), (3, 3, 4)])
def test_a_batch_of_task_created_messages_reads_its_project_once_and_stops_at_a_full_window(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch, window_size: int, starts: int, transactions: int
) -> None:
    # Given 10 task.created messages of one project, and a window of 100 or of 3
    monkeypatch.setenv("ACTIVE_WINDOW", str(window_size))
    project = _create_project(admin)
    task_ids = _tasks(admin, project, 10)
    started: list[str] = []
    monkeypatch.setattr(machine, "start", lambda arn, task_id, payload: started.append(task_id) or True)
    from starter.handler import handler

    # When the starter handles the batch
    with metered() as calls:
        result = handler(
            {"Records": _created_messages(project, task_ids)},
            LambdaContextStub(function_name="serval-local-starter"),
        )

    # Then the tasks that fit started, with one read of the project; a slot transaction per
    # start, and once the window is full one refused attempt and no more for that batch
    assert result == {"batchItemFailures": []}
    assert started == task_ids[:starts]
    assert calls.calls == {"dynamodb:GetItem": 1, "dynamodb:TransactWriteItems": transactions}
    # And the rest wait in the backlog for the refill
    assert set(window.backlog(project, 100)) == set(task_ids[starts:])
