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
