"""Ingest Lambda: SQS batches of S3 events -> tasks. Partial-batch failures are reported."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import ingest
from serval.settings import METRICS_NAMESPACE

logger = Logger(service="ingest")
metrics = Metrics(service="ingest", namespace=METRICS_NAMESPACE)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    context = lambda_context
    outcomes = ingest.process_message(
        record.body,
        record.message_id,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000.0,
        request_id=context.aws_request_id,
    )
    for outcome in outcomes:
        logger.info("ingest outcome", outcome=outcome.kind, **outcome.detail)
        if outcome.kind == "task_created":
            metrics.add_metric(name="TasksCreated", unit=MetricUnit.Count, value=1)
        elif outcome.kind == "import_completed":
            metrics.add_metric(
                name="TasksCreated", unit=MetricUnit.Count, value=outcome.detail["tasks_created"]
            )
        elif outcome.kind == "poison":
            metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
