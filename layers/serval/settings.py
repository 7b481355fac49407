"""Runtime settings every Lambda reads from its environment.

The field names are the environment variable names. ``infra/spec.py`` builds each
function's environment from this model, so CDK, the local stack and the handlers
cannot disagree about a name. Settings are read per call (cheaply cached on the
environment's contents) and never at import time: in the local stack all handlers
share one process and one ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# CloudWatch namespace of every function's metrics. Handlers pass it to Powertools explicitly
# (the local stack and the tests share one process, whose environment may not carry it).
METRICS_NAMESPACE = "Serval"


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    SERVAL_ENV: str = Field(description="Deployment environment name: dev, staging, prod or local.")
    TASKS_TABLE: str
    AUDIT_TABLE: str
    DATA_BUCKET: str
    EXPORT_BUCKET: str
    EVENT_BUS: str
    INGEST_DLQ_URL: str = ""
    # Byte ranges of large manifests: their queue (and its DLQ), and the size of one range.
    INGEST_RANGES_QUEUE_URL: str = ""
    INGEST_RANGES_DLQ_URL: str = ""
    INGEST_RANGE_BYTES: int = Field(default=16 * 2**20, ge=1)
    JOBS_QUEUE_URL: str = ""
    JOBS_DEAD_URL: str = ""
    EXECUTIONS_QUEUE_URL: str = ""
    STATE_MACHINE_ARN: str = ""
    ACTIVE_WINDOW: int = 1000
    USER_POOL_ID: str = ""
    AUDIT_SEAL_SECRET: str = ""
    AUTH_CACHE_SECONDS: int = 30
    LEASE_SECONDS: int = 1800
    RESERVATION_SECONDS: int = 86_400
    AUDIT_TTL_DAYS: int = 0
    MAX_BULK_CREATE: int = 1000
    EXPORT_SHARD_TASKS: int = Field(default=20_000, ge=1)
    PRESIGN_SECONDS: int = 3600
    # Lifetime of the presigned GET URLs of a task's media (leases and task details).
    MEDIA_URL_SECONDS: int = Field(default=900, ge=1)
    # The only origin whose browser requests get CORS headers on the API's responses; "" = none.
    CORS_ALLOW_ORIGIN: str = ""
    # Timeouts and retries of AWS calls (adapters.clients.BUDGETS): "request" ends well inside the API's timeout.
    AWS_CALL_BUDGET: Literal["request", "worker"] = "worker"
    # Seconds after an invocation starts when no AWS attempt may start (429 instead); 0 = none.
    AWS_CALL_DEADLINE_S: float = Field(default=0, ge=0)
    # Webhooks: the delivery log's table, the dispatcher's queue and DLQ, and its rules
    DELIVERIES_TABLE: str = ""
    WEBHOOKS_QUEUE_URL: str = ""
    WEBHOOKS_DLQ_URL: str = ""
    WEBHOOK_DISABLE_AFTER_FAILURES: int = Field(default=50, ge=1)
    WEBHOOK_DISABLE_AFTER_S: int = Field(default=5 * 86_400, ge=0)
    WEBHOOK_SECRET_OVERLAP_S: int = Field(default=86_400, ge=0)
    WEBHOOK_LOG_DAYS: int = Field(default=30, ge=1)
    WEBHOOK_TIME_SCALE: float = Field(default=1.0, gt=0, le=1)
    POWERTOOLS_SERVICE_NAME: str = "serval"


_KEYS = tuple(RuntimeSettings.model_fields)


@lru_cache(maxsize=32)
def _parse(items: tuple[tuple[str, str], ...]) -> RuntimeSettings:
    return RuntimeSettings.model_validate(dict(items))


# The local stack runs every function in one process. Its Lambda dispatcher binds
# each invocation's own environment here instead of mutating ``os.environ``.
_invocation_env: ContextVar[Mapping[str, str] | None] = ContextVar("serval_invocation_env", default=None)


def settings() -> RuntimeSettings:
    """The settings of the current invocation: its bound environment, else ``os.environ``."""
    env = _invocation_env.get()
    source: Mapping[str, str] = os.environ if env is None else env
    return _parse(tuple((k, source[k]) for k in _KEYS if k in source))


def current_environment() -> Mapping[str, str] | None:
    """The environment bound to the current invocation, if any (local runtime only)."""
    return _invocation_env.get()


@contextmanager
def invocation_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Bind a function's environment for the duration of one in-process invocation."""
    token = _invocation_env.set(dict(env))
    try:
        yield
    finally:
        _invocation_env.reset(token)
