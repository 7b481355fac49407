"""Starter Lambda: starts task executions from the executions queue, within each project's window.

Messages are ``task.created`` events routed from the bus, refill requests sent when an
execution ends, or resume requests for tasks whose execution ended while they waited in Label
or Review (the local stack sends them on start). The function's low concurrency throttles
StartExecution. A malformed message is logged and dropped; any other failure retries just that
message.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.domain import executions
from serval.errors import ValidationFailed
from serval.logic import workflow

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, batch: workflow.StartBatch) -> None:
    try:
        request = executions.parse_start_message(record.body)
    except ValidationFailed as exc:
        logger.warning(
            "dropped a malformed executions message", message_id=record.message_id, reason=exc.message
        )
        return
    if isinstance(request, executions.ResumeRequest):
        step = workflow.resume(request)
        logger.info(
            "execution resumed" if step else "nothing to resume",
            project_id=request.project_id,
            task_id=request.task_id,
            execution=request.execution,
            step=step,
        )
        if step:
            metrics.add_metric(name="ExecutionsResumed", unit=MetricUnit.Count, value=1)
        return
    started = workflow.start(request, batch)
    logger.info("executions started", project_id=request.project_id, task_id=request.task_id, started=started)
    if started:
        metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=started)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=functools.partial(record_handler, batch=workflow.StartBatch()),
        processor=processor,
        context=context,
    )
