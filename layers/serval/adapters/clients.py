"""AWS clients: created lazily, once per execution environment and call budget, replaceable by tests.

Every call's timeouts and retries come from the function's :class:`CallBudget`
(``settings().AWS_CALL_BUDGET``), for the boto3 clients here and for pynamodb's
(``dynamo_models``). Retries happen in one place, botocore's standard mode: code
above it retries only answers botocore does not (a transaction conflict, unprocessed
batch items). A deadline (the api's ``AWS_CALL_DEADLINE_S``) also stops every retry loop of
an invocation: inside :func:`deadline`, no AWS request attempt starts once it has passed
(a ``before-send`` hook that every botocore session gets, so pynamodb's too, raises
:class:`~serval.errors.Throttled`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serval.errors import Throttled
from serval.settings import settings

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

# botocore's standard retry mode sleeps rand(0, 1) * min(2 ** (n - 1), 20) s before retry n,
# and up to 5 s more when the answer carries a retry-after header.
STANDARD_MAX_BACKOFF_S = 20.0
RETRY_AFTER_EXTRA_S = 5.0
# The longest sleep of Serval's own retry loops (adapters.tasks, adapters.dynamo).
OWN_MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class CallBudget:
    """Timeouts and retries of every AWS call of a function."""

    connect_timeout_s: float
    read_timeout_s: float
    max_attempts: int  # botocore's total attempts, the first included

    def config(self) -> Config:
        from botocore.config import Config

        return Config(
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=32,
        )

    def backoff_s(self, retry: int) -> float:
        """The longest sleep botocore takes before retry number ``retry`` (1-based)."""
        return min(2.0 ** (retry - 1), STANDARD_MAX_BACKOFF_S) + RETRY_AFTER_EXTRA_S

    def call_worst_case_s(self) -> float:
        """One call whose every attempt times out, with the longest sleeps in between."""
        attempts = self.max_attempts * (self.connect_timeout_s + self.read_timeout_s)
        return attempts + sum(self.backoff_s(n) for n in range(1, self.max_attempts))

    def invocation_worst_case_s(self, deadline_s: float) -> float:
        """How long an invocation's AWS calls and retries can take in all, with a deadline.

        The last attempt starts just before the deadline and times out; then botocore or one of
        Serval's loops sleeps once, and the next attempt is refused.
        """
        longest_sleep = max(
            self.backoff_s(self.max_attempts - 1) if self.max_attempts > 1 else 0.0, OWN_MAX_BACKOFF_S
        )
        return deadline_s + self.connect_timeout_s + self.read_timeout_s + longest_sleep


BUDGETS: dict[str, CallBudget] = {
    # The API (29 s behind API Gateway): DynamoDB, S3, Cognito and Secrets Manager answer in
    # milliseconds, so a second without a connection or three without an answer is a failure.
    "request": CallBudget(connect_timeout_s=1, read_timeout_s=3, max_attempts=3),
    # Queue, stream and workflow workers: their trigger redelivers; long S3 multipart steps need time.
    # They have no deadline (AWS_CALL_DEADLINE_S is the api's).
    "worker": CallBudget(connect_timeout_s=5, read_timeout_s=60, max_attempts=8),
}

_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}
_overrides: dict[str, Any] = {}
_deadline: ContextVar[float | None] = ContextVar("serval_aws_deadline", default=None)


def budget() -> CallBudget:
    """The call budget of the current invocation's function."""
    return BUDGETS[settings().AWS_CALL_BUDGET]


def invocation_deadline_s() -> float | None:
    """The current function's deadline for starting AWS attempts (``AWS_CALL_DEADLINE_S``), if any."""
    return settings().AWS_CALL_DEADLINE_S or None


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """No AWS request attempt starts once ``seconds`` have passed (None: no deadline)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def refuse_after_deadline(**_: Any) -> None:
    """botocore ``before-send`` hook: refuse an attempt that would start after the deadline."""
    ends = _deadline.get()
    if ends is not None and time.monotonic() >= ends:
        raise Throttled(
            "AWS did not answer in time; retry shortly",
            details={"deadline_s": settings().AWS_CALL_DEADLINE_S},
        )


def install_deadline_hook() -> None:
    """Give every botocore session created from now on the deadline hook (boto3's and pynamodb's).

    Called before this module creates a client and before pynamodb models are built, not at
    import: botocore loads on first use.
    """
    from botocore import handlers

    entry = ("before-send", refuse_after_deadline)
    if entry not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append(entry)


def _client(service: str) -> Any:
    override = _overrides.get(service)
    if override is not None:
        return override
    name = settings().AWS_CALL_BUDGET
    client = _clients.get((service, name))
    if client is None:
        with _lock:
            client = _clients.get((service, name))
            if client is None:
                import boto3  # lazy: keeps handler cold starts small
                from botocore.config import Config

                install_deadline_hook()
                config = BUDGETS[name].config()
                if service == "s3":
                    config = config.merge(Config(signature_version="s3v4"))
                extra: dict[str, Any] = {"config": config}
                client = boto3.session.Session().client(service, **extra)  # type: ignore[call-overload]
                _clients[(service, name)] = client
    return client


def s3() -> S3Client:
    return _client("s3")


def sqs() -> SQSClient:
    return _client("sqs")


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")


def events() -> EventBridgeClient:
    return _client("events")


def cognito() -> CognitoIdentityProviderClient:
    return _client("cognito-idp")


def stepfunctions() -> SFNClient:
    return _client("stepfunctions")


def secretsmanager() -> Any:  # no mypy_boto3 stubs for Secrets Manager are installed
    return _client("secretsmanager")


def override(service: str, client: Any) -> None:
    """Replace a client (tests)."""
    with _lock:
        _overrides[service] = client


def reset() -> None:
    """Forget every client, e.g. after the endpoint changed (tests)."""
    with _lock:
        _clients.clear()
        _overrides.clear()


# Transaction cancellation reasons that a later attempt may not meet again.
_TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)


def retryable(exc: BaseException) -> bool:
    """Whether trying again may succeed: throttling, a 5xx or timeout answer, a connection or
    read timeout fault (botocore's own lists, as its standard retry mode uses them), or a
    transaction cancelled by a conflict or throttling, anywhere in the exception's chain.
    Everything else (a bug, data a format cannot hold, a refused request) fails the same way
    every time."""
    from botocore.exceptions import ClientError
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker, TransientRetryableChecker

    from serval.adapters.dynamo import TransactionCancelled

    checkers = (TransientRetryableChecker(), ThrottledRetryableChecker())
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, TransactionCancelled) and _TRANSIENT_CANCELLATIONS & set(current.codes):
            return True
        response = current.response if isinstance(current, ClientError) else None
        if response is not None and int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500:
            return True
        context = RetryContext(
            attempt_number=1,
            parsed_response=dict(response) if response is not None else None,
            caught_exception=current if response is None and isinstance(current, Exception) else None,
        )
        if any(checker.is_retryable(context) for checker in checkers):
            return True
        current = current.__cause__ or current.__context__
    return False
