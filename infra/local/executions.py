"""Step Functions executions over a restart: the waits the saved state holds get executions again.

moto keeps no executions over a restart, so every task the saved state shows waiting in Label
or Review holds the token of an execution that is gone. On start, after the state is restored,
each such task (whose execution had not ended) gets a resume request on the executions queue
(the queue and starter that start executions), naming the execution that issued its token;
the starter re-creates it with :func:`serval.logic.workflow.resume`, straight back into that
wait, with a token of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3

from infra.local.resources import LocalResources
from infra.spec import ServalSpec, SqsTrigger
from serval.domain.executions import ResumeRequest, current_execution, resume_message
from serval.domain.handoffs import Handoff
from serval.domain.lifecycle import TaskStatus, waiting_step

SEND_BATCH = 10  # SendMessageBatch's limit


def executions_queue(spec: ServalSpec) -> str:
    """The queue id of the function that starts executions (the starter's trigger)."""
    (queue,) = {
        f.trigger.queue
        for f in spec.functions.values()
        if f.starts_executions and isinstance(f.trigger, SqsTrigger)
    }
    return queue


def tasks_left_waiting(table_name: str) -> Iterator[ResumeRequest]:
    """A resume request for every task that waits in Label or Review (by its status, the step
    tokens it holds and its undelivered handoff) and whose execution never ended, naming the
    execution that issued its token.

    A scan: this runs once on start, never on a request path. The starter reads each task again
    before it resumes it."""
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table_name,
            ProjectionExpression="project_id, task_id, execution_name, #s, label_token, review_token, handoff",
            FilterExpression=(
                "#e = :task AND (attribute_exists(label_token) OR attribute_exists(review_token))"
                " AND attribute_not_exists(execution_ended_at)"
            ),
            ExpressionAttributeNames={"#e": "entity", "#s": "status"},
            ExpressionAttributeValues={":task": {"S": "task"}},
        )
    )
    for page in pages:
        for item in page["Items"]:
            status = TaskStatus(item["status"]["S"])
            pending = Handoff.from_stored(item["handoff"]["S"]) if "handoff" in item else None
            step = pending.step if pending else None
            if waiting_step(status, "label_token" in item, "review_token" in item, step) is None:
                continue  # between steps
            task_id = item["task_id"]["S"]
            name = item.get("execution_name", {}).get("S")
            yield ResumeRequest(item["project_id"]["S"], task_id, current_execution(task_id, name))


def request_resumes(spec: ServalSpec, resources: LocalResources) -> int:
    """Queue a resume request for every task left waiting in Label or Review; returns how many."""
    sqs: Any = boto3.client("sqs")
    queue_url = resources.queue_urls[executions_queue(spec)]
    batch: list[str] = []
    sent = 0

    def flush() -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:
            raise RuntimeError(f"could not queue {len(failed)} resume requests: {failed[0]}")
        batch.clear()

    for request in tasks_left_waiting(resources.table_names["tasks"]):
        batch.append(resume_message(request))
        sent += 1
        if len(batch) == SEND_BATCH:
            flush()
    if batch:
        flush()
    return sent
