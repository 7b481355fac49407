"""Chainer Lambda: the audit table's stream -> each new record linked into its scope's hash chain.

A batch is linked in runs per scope (``serval.logic.audit_chain.link_batch``), in stream
order. A failure stops its scope at that record: it and every later record of the batch are
reported failed, so Lambda retries from there and the chain never skips (records of the
retried part that were linked already are left alone).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import audit_chain
from serval.logic.audit_chain import LinkKind

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _change(record: dict[str, Any]) -> audit_chain.StreamChange:
    change = record.get("dynamodb", {})
    return audit_chain.StreamChange(
        record.get("eventName", ""), change.get("Keys", {}), change.get("NewImage")
    )


def _report(outcome: audit_chain.LinkOutcome) -> None:
    if outcome.kind is LinkKind.IGNORED:
        return
    logger.info(
        "audit record", outcome=outcome.kind, scope=outcome.scope, seq=outcome.seq, audit_id=outcome.audit_id
    )
    if outcome.kind is LinkKind.LINKED:
        metrics.add_metric(name="AuditRecordsLinked", unit=MetricUnit.Count, value=1)
        if outcome.seal_ok is False:
            logger.warning(
                "linked an audit record whose seal is invalid", scope=outcome.scope, seq=outcome.seq
            )
            metrics.add_metric(name="AuditSealInvalid", unit=MetricUnit.Count, value=1)
    elif outcome.kind is LinkKind.GONE:
        logger.warning("an audit record was deleted before it could be linked", audit_id=outcome.audit_id)
        metrics.add_metric(name="AuditRecordsGone", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    records: list[dict[str, Any]] = event.get("Records", [])
    result = audit_chain.link_batch([_change(r) for r in records])
    for outcome in result.outcomes:
        _report(outcome)
    if result.failed_at is None:
        return {"batchItemFailures": []}
    failed = records[result.failed_at :]
    logger.error(
        "linking stopped at a record; the batch is retried from it",
        sequence=failed[0].get("dynamodb", {}).get("SequenceNumber"),
        reason=repr(result.error),
    )
    metrics.add_metric(name="AuditLinkFailures", unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}
