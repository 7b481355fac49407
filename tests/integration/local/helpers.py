"""Helpers of the local-stack tests."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from typing import Any

import boto3

from infra.local.resources import LAMBDA_TRUST_POLICY

HANDLERS = "tests.integration.local.fixture_handlers"


def create_function(
    name: str, handler: str, *, timeout: int = 30, environment: dict[str, str] | None = None
) -> str:
    """A Lambda function on moto whose handler is one of :mod:`fixture_handlers` (by attribute name)."""
    role = boto3.client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY
    )
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README.txt", "in-process")
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler=f"{HANDLERS}.{handler}",
        Code={"ZipFile": code.getvalue()},
        Timeout=timeout,
        MemorySize=512,
        Environment={"Variables": environment or {}},
    )
    return name


def invoke(function_name: str, event: object) -> tuple[Any, Any]:
    """Invoke through boto3 (and so through moto); returns (response, decoded payload)."""
    response = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read())


def wait_until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
