"""Webhooks Lambda: the dispatcher. Domain events from the bus (and its own retries and
replays) in, signed deliveries to the subscriptions' URLs out (``serval.logic.dispatch``).

A message that is neither goes to the DLQ with its reason. The batch is all or nothing: an AWS
failure retries it whole (an attempt already made is then repeated; consumers deduplicate on
``webhook-id``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.domain import webhooks
from serval.logic import dispatch

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = dispatch.dispatch(event.get("Records", []))
    for name, value in (
        (webhooks.METRIC_SUCCEEDED, report.delivered),
        (webhooks.METRIC_FAILED, report.failed),
        ("DeliveriesSkipped", report.skipped),
        ("DeliveriesDead", report.dead),
        ("RetriesDeferred", report.deferred),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for message_id, reason in report.poison:
        logger.warning(
            "a webhooks message was neither an event nor a delivery", message_id=message_id, reason=reason
        )
    for webhook_id in report.disabled:
        logger.warning("disabled a webhook subscription", webhook_id=webhook_id)
    return {"batchItemFailures": []}
