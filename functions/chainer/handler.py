"""Chainer Lambda: the audit table's stream -> each new record linked into its scope's hash chain.

Records are linked in stream order. A failure stops the batch at that record: it and every
later record are reported failed, so Lambda retries from there and the chain never skips.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import audit_chain
from serval.settings import METRICS_NAMESPACE

logger = Logger(service="chainer")
metrics = Metrics(service="chainer", namespace=METRICS_NAMESPACE)


class InOrderProcessor(BatchProcessor):
    """A DynamoDB-stream BatchProcessor that stops at the first failed record."""

    def _process_record(self, record: dict[str, Any]) -> Any:
        if self.fail_messages:
            earlier = RuntimeError("an earlier record of the batch failed; retried in order")
            return self.failure_handler(
                record=self._to_batch_type(record, event_type=self.event_type, model=self.model),
                exception=(RuntimeError, earlier, None),
            )
        return super()._process_record(record)


def record_handler(record: DynamoDBRecord) -> None:
    change = record.raw_event.get("dynamodb", {})
    try:
        outcome = audit_chain.link_change(
            record.raw_event.get("eventName", ""), change.get("Keys", {}), change.get("NewImage")
        )
    except Exception:
        logger.exception(
            "linking stopped at a record; the batch is retried from it",
            sequence=record.dynamodb.sequence_number if record.dynamodb else None,
        )
        metrics.add_metric(name="AuditLinkFailures", unit=MetricUnit.Count, value=1)
        raise
    if outcome.kind == "ignored":
        return
    logger.info(
        "audit record", outcome=outcome.kind, scope=outcome.scope, seq=outcome.seq, audit_id=outcome.audit_id
    )
    if outcome.kind == "linked":
        metrics.add_metric(name="AuditRecordsLinked", unit=MetricUnit.Count, value=1)
        if outcome.seal_ok is False:
            logger.warning(
                "linked an audit record whose seal is invalid", scope=outcome.scope, seq=outcome.seq
            )
            metrics.add_metric(name="AuditSealInvalid", unit=MetricUnit.Count, value=1)
    elif outcome.kind == "gone":
        logger.warning("an audit record was deleted before it could be linked", audit_id=outcome.audit_id)
        metrics.add_metric(name="AuditRecordsGone", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # a processor per batch: it holds the batch's state, and the local stack may run batches concurrently
    processor = InOrderProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
