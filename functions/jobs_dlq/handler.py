"""Jobs DLQ Lambda: a jobs message whose every delivery crashed or timed out lands here.

Each message's job is failed with the reason (unless it finished meanwhile), and the message
is kept, with that outcome, in the ``jobs-dead`` queue. A message that cannot be handled now
is retried; the queue's redrive moves it to ``jobs-dead`` after a few tries.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import jobs

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    attributes = {
        name: value.string_value or ""
        for name, value in record.message_attributes.items()
        if value.data_type == "String"
    }
    outcome = jobs.fail_dead_letter(record.body, attributes)
    logger.error(
        "dead-lettered job message", outcome=outcome.kind, message_id=record.message_id, **outcome.detail
    )
    if outcome.kind is jobs.OutcomeKind.FAILED:
        metrics.add_metric(name="DeadJobsFailed", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
