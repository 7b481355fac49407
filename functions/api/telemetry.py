"""The API function's logger, metrics and tracer, shared by the handler and its routers."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# Service name and metrics namespace: the function's POWERTOOLS_* environment (infra/spec.py)
logger = Logger()
metrics = Metrics()
# X-Ray segments for each invocation and its AWS calls; off outside Lambda (no daemon listens)
tracer = Tracer()


def count(name: str, value: int = 1) -> None:
    """One metric per business event (ProjectCreated, TasksCreated, AnnotationCreated...)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
