"""Step Functions executions over a restart: the waits the saved state holds get executions again.

moto keeps no executions over a restart, so every task the saved state shows waiting in Label
or Review holds the token of an execution that is gone. On start, after the state is restored,
each such task gets a resume request on the executions queue (the same queue and starter that
start executions), naming the execution that issued its token; the starter re-creates it with
:func:`serval.logic.workflow.resume`, straight back into that wait, with a token of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3

from infra.local.resources import LocalResources
from infra.spec import ServalSpec, SqsTrigger
from serval.domain.executions import ResumeRequest, current_execution, resume_message

SEND_BATCH = 10  # SendMessageBatch's limit


def executions_queue(spec: ServalSpec) -> str:
    """The queue id of the function that starts executions (the starter's trigger)."""
    (queue,) = {
        f.trigger.queue
        for f in spec.functions.values()
        if f.starts_executions and isinstance(f.trigger, SqsTrigger)
    }
    return queue


def tasks_holding_tokens(table_name: str) -> Iterator[ResumeRequest]:
    """Every task item that holds a Label or Review token, with the execution that issued it.

    A scan: this runs once on start, never on a request path. Whether the task still waits in
    that step is the starter's to decide (it reads the task again)."""
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table_name,
            ProjectionExpression="project_id, task_id, execution_name",
            FilterExpression="#e = :task AND (attribute_exists(label_token) OR attribute_exists(review_token))",
            ExpressionAttributeNames={"#e": "entity"},
            ExpressionAttributeValues={":task": {"S": "task"}},
        )
    )
    for page in pages:
        for item in page["Items"]:
            task_id = item["task_id"]["S"]
            name = item.get("execution_name", {}).get("S")
            yield ResumeRequest(item["project_id"]["S"], task_id, current_execution(task_id, name))


def request_resumes(spec: ServalSpec, resources: LocalResources) -> int:
    """Queue a resume request for every task holding a step token; returns how many."""
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

    for request in tasks_holding_tokens(resources.table_names["tasks"]):
        batch.append(resume_message(request))
        sent += 1
        if len(batch) == SEND_BATCH:
            flush()
    if batch:
        flush()
    return sent
