"""Ingest Lambdas: SQS batches of S3 events -> tasks (``handler``), and the byte ranges of large
manifests, one per invocation (``ranges``). Partial-batch failures are reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import ingest
from serval.logic.ingest import OutcomeKind as Kind

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def _report(outcomes: list[ingest.Outcome]) -> None:
    for outcome in outcomes:
        logger.info("ingest outcome", outcome=outcome.kind, **outcome.detail)
        if outcome.kind is Kind.TASK_CREATED:
            metrics.add_metric(name="TasksCreated", unit=MetricUnit.Count, value=1)
        elif outcome.kind in (Kind.RANGE_DONE, Kind.IMPORT_COMPLETED, Kind.IMPORT_CLOSED):
            # each range counts its own tasks once, when it is done
            created = outcome.detail.get("range_tasks_created", 0)
            metrics.add_metric(name="TasksCreated", unit=MetricUnit.Count, value=created)
            if outcome.kind is Kind.IMPORT_COMPLETED:
                metrics.add_metric(name="ImportsCompleted", unit=MetricUnit.Count, value=1)
        elif outcome.kind is Kind.IMPORT_SPLIT:
            metrics.add_metric(name="ImportRanges", unit=MetricUnit.Count, value=outcome.detail["ranges"])
        elif outcome.kind is Kind.POISON:
            metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)


def _time_left(context: LambdaContext) -> Callable[[], float]:
    return lambda: context.get_remaining_time_in_millis() / 1000.0


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    _report(
        ingest.process_message(
            record.body,
            record.message_id,
            time_left=_time_left(lambda_context),
            request_id=lambda_context.aws_request_id,
        )
    )


def range_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    outcome = ingest.process_range_message(
        record.body,
        record.message_id,
        time_left=_time_left(lambda_context),
        request_id=lambda_context.aws_request_id,
    )
    _report([outcome])


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def ranges(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=range_handler, processor=processor, context=context
    )
