"""Events Lambda: the tasks table's stream -> domain events on the Serval bus."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.logic import events

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    retry_from = events.publish_changes(records)
    metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=len(records))
    if retry_from:
        logger.warning("publishing failed; the batch is retried from a record", sequence_number=retry_from[0])
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in retry_from]}
