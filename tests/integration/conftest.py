"""In-process moto (``mock_aws``) with every resource built from infra.spec, as the local stack builds it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from infra import config, spec
from infra.local import patches, resources
from serval.adapters import clients, dynamo_models
from serval.domain.actor import Actor

ACCOUNT = "123456789012"
REGION = "us-east-1"

_valid_definitions: set[str] = set()
_validate_definition = StepFunctionsParserBackend._validate_definition


def _validate_definition_once(definition: str) -> None:
    """moto validates a new state machine by parsing its ASL (a fifth of the `aws` fixture's
    setup); every test creates the same machines, so a definition that parsed is not parsed again."""
    if definition not in _valid_definitions:
        _validate_definition(definition)
        _valid_definitions.add(definition)


StepFunctionsParserBackend._validate_definition = staticmethod(_validate_definition_once)  # type: ignore[method-assign]


@dataclass
class Aws:
    spec: spec.ServalSpec
    env: dict[str, str]
    s3: Any
    sqs: Any
    ddb: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Given a fresh moto account with Serval's resources created from the spec, and
    DynamoDB's request size limits enforced as in AWS."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # DynamoDB's size limits as AWS applies them (moto alone lets a 4 MB transaction through)
    with patches.limits_installed(), mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        _forget_clients()
        the_spec = spec.build(config.load("local"), ACCOUNT, REGION)
        created = resources.connect_event_sources(the_spec, resources.provision(the_spec, "in-process"))
        env: dict[str, str] = {}
        for fn in the_spec.functions.values():  # every function's variables (names never clash)
            env |= resources.function_environment(
                fn,
                user_pool_id=created.user_pool_id,
                queue_urls=created.queue_urls,
                dlq_urls=created.dlq_urls,
                state_machine_arns=created.state_machine_arns,
            )
        env.pop("POWERTOOLS_SERVICE_NAME", None)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield Aws(
            spec=the_spec,
            env=env,
            s3=boto3.client("s3", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            ddb=boto3.client("dynamodb", region_name=REGION),
        )
        _forget_clients()


def _forget_clients() -> None:
    """Drop cached SDK clients and pynamodb connections (another test may have used a server)."""
    clients.reset()
    dynamo_models.tasks_models.cache_clear()
    dynamo_models.audit_models.cache_clear()


@pytest.fixture
def admin() -> Actor:
    return Actor(
        user_id="u-admin", username="admin", groups=("admin",), request_id="req-1", source_ip="127.0.0.1"
    )


@pytest.fixture
def annotator() -> Actor:
    return Actor(user_id="u-annotator", username="annotator", groups=("annotator",), request_id="req-2")
