"""Jobs Lambda: runs async jobs (exports, bulk operations) and the shard and assemble steps of
large dataset exports from the jobs queue, one message per batch.

Partial-batch failures are reported: a message whose job another worker holds, or that
hit a transient error, comes back later; poison messages are logged and dropped.
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
# batches hold one message: a busy job is reported as a failed item, not as a crashed invocation
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

METRICS = {
    jobs.OutcomeKind.SUCCEEDED: "JobsSucceeded",
    jobs.OutcomeKind.FAILED: "JobsFailed",
    jobs.OutcomeKind.POISON: "PoisonJobMessages",
    jobs.OutcomeKind.FANNED_OUT: "ExportsFannedOut",
    jobs.OutcomeKind.GATHERED: "ExportShardsGathered",
}


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    context = lambda_context
    outcome = jobs.process_message(
        record.body, time_left=lambda: context.get_remaining_time_in_millis() / 1000.0
    )
    if outcome.kind is jobs.OutcomeKind.POISON:
        logger.error("poison job message", message_id=record.message_id, **outcome.detail)
    else:
        logger.info("job outcome", outcome=outcome.kind, message_id=record.message_id, **outcome.detail)
    if outcome.kind in METRICS:
        metrics.add_metric(name=METRICS[outcome.kind], unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
