"""Reconciler Lambda: on a schedule, finishes the work a crash or an outage left half-done.

One run reads each project's overdue outbox entries by key and repairs them
(:mod:`serval.logic.reconcile`); every repair is audited there and counted here, one metric per
kind of repair. A run that fails part-way is simply the next run's work: every repair is
conditional on the state it read.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from serval.domain.handoffs import Repair
from serval.logic import reconcile

logger = Logger()
tracer = Tracer()
metrics = Metrics()

METRIC_NAMES = {kind: f"Repairs{kind.value.title().replace('_', '')}" for kind in Repair}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    report = reconcile.run()
    for kind, n in report.repairs.items():
        metrics.add_metric(name=METRIC_NAMES[kind], unit=MetricUnit.Count, value=n)
    logger.info("reconciled", extra=report.as_dict())
    return report.as_dict()
