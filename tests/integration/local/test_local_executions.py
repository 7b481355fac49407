"""On start, the local stack asks the starter to re-create the executions of the tasks its saved
state shows waiting in Label or Review (moto kept no executions)."""

from __future__ import annotations

import json

import boto3

from infra.local.executions import executions_queue, request_resumes, tasks_left_waiting
from infra.local.resources import LocalResources
from infra.spec import ServalSpec
from serval import keys
from serval.domain.executions import ResumeRequest, parse_start_message


def _task(task_id: str, status: str, **attributes: str) -> dict[str, dict[str, str]]:
    item = {
        keys.PK: keys.project_pk("p_restart"),
        keys.SK: keys.task_sk(task_id),
        "entity": "task",
        "project_id": "p_restart",
        "task_id": task_id,
        "status": status,
        **attributes,
    }
    return {name: {"S": value} for name, value in item.items()}


def test_the_tasks_left_waiting_in_a_step_get_one_resume_request_each(
    resources: LocalResources, spec: ServalSpec
) -> None:
    # Given a saved state's tasks: waiting in Label (twice: once re-created before), in Review,
    # and four that wait in no step
    table = resources.table_names["tasks"]
    items = [
        _task("t_label", "leased", label_token="tok-1"),
        _task("t_again", "queued", label_token="tok-2", execution_name="t_again-r1"),
        _task("t_review", "in_review", review_token="tok-3", label_token="tok-used"),
        _task("t_submitted", "submitted", label_token="tok-4"),  # its round's Label step was never told
        _task("t_ended", "queued", label_token="tok-5", execution_ended_at="2026-12-01T00:00:00.000Z"),
        _task("t_new", "new"),
        _task("t_done", "exported"),
    ]
    ddb = boto3.client("dynamodb")
    for item in items:
        ddb.put_item(TableName=table, Item=item)

    # When the waits are looked for, Then each waiting task names the execution that issued its token
    assert sorted(tasks_left_waiting(table), key=lambda r: r.task_id) == [
        ResumeRequest("p_restart", "t_again", "t_again-r1"),
        ResumeRequest("p_restart", "t_label", "t_label"),
        ResumeRequest("p_restart", "t_review", "t_review"),
    ]

    # When the requests are queued, Then the starter's queue holds exactly those, as it parses them
    queue_url = resources.queue_urls[executions_queue(spec)]
    assert request_resumes(spec, resources) == 3
    sqs = boto3.client("sqs")
    bodies = []
    while received := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in received]
    requests = sorted((parse_start_message(b) for b in bodies), key=lambda r: r.task_id or "")
    assert [r.task_id for r in requests] == ["t_again", "t_label", "t_review"]
    assert all(isinstance(r, ResumeRequest) for r in requests)
    assert json.loads(bodies[0])["resume"]["project_id"] == "p_restart"
