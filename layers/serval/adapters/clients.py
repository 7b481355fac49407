"""AWS clients: created lazily, once per execution environment, replaceable by tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    client = _clients.get(service)
    if client is None:
        with _lock:
            client = _clients.get(service)
            if client is None:
                import boto3  # lazy: keeps handler cold starts small
                from botocore.config import Config

                config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
                if service == "s3":
                    config = config.merge(Config(signature_version="s3v4"))
                extra: dict[str, Any] = {"config": config}
                client = boto3.session.Session().client(service, **extra)  # type: ignore[call-overload]
                _clients[service] = client
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
        _clients[service] = client


def reset() -> None:
    """Forget every client, e.g. after the endpoint changed (tests)."""
    with _lock:
        _clients.clear()


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
