"""The API function's logger and metrics, shared by the handler and its routers."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from serval.settings import METRICS_NAMESPACE

logger = Logger(service="api")
metrics = Metrics(service="api", namespace=METRICS_NAMESPACE)


def count(name: str, value: int = 1) -> None:
    """One metric per business event (ProjectCreated, TasksCreated, AnnotationCreated...)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
