"""The request-path patches (infra/local/patches.py, section 8) give the answers moto gives.

Each test runs the same calls with and without the patches, or checks that what the patch
shares between requests (a parsed state machine, update expression or JSON path) is never
changed by one request so that another sees it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from infra.local import patches

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto that runs state machines (the patches are installed by the tests)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert not patches.is_installed()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield
    assert not patches.is_installed()


def _queue_attributes(sqs: Any, urls: list[str]) -> list[dict[str, str]]:
    answers = []
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        answers.append({k: v for k, v in attributes.items() if not k.endswith("Timestamp")})
    return answers


@pytest.mark.usefixtures("moto")
def test_queue_attributes_are_the_same_when_computed_only_as_read() -> None:
    # Given a dead-letter queue, a queue with a redrive policy and a policy, a FIFO queue with
    # content-based deduplication and a KMS queue, with messages visible and in flight
    sqs = boto3.client("sqs", region_name=REGION)
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3})
    urls = [
        dead,
        sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": redrive, "Policy": "{}"})["QueueUrl"],
        sqs.create_queue(
            QueueName="ordered.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
        sqs.create_queue(QueueName="sealed", Attributes={"KmsMasterKeyId": "alias/x"})["QueueUrl"],
    ]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=urls[1], MessageBody=body)
    sqs.receive_message(QueueUrl=urls[1], MaxNumberOfMessages=1)
    unpatched = _queue_attributes(sqs, urls)

    # When the same is asked with the patches installed, after a FIFO send that deduplicates
    with patches.installed():
        sqs.send_message(QueueUrl=urls[2], MessageBody="same", MessageGroupId="g")
        sqs.send_message(QueueUrl=urls[2], MessageBody="same", MessageGroupId="g")
        patched = _queue_attributes(sqs, urls)

    # Then every attribute is as moto answers it (the FIFO queue holds the one deduplicated send)
    assert unpatched[2]["ApproximateNumberOfMessages"] == "0"
    assert patched[2]["ApproximateNumberOfMessages"] == "1"
    patched[2]["ApproximateNumberOfMessages"] = "0"
    assert patched == unpatched
    assert (
        "RedrivePolicy" not in patched[0] and json.loads(patched[1]["RedrivePolicy"])["maxReceiveCount"] == 3
    )


# Pass, Choice and Task-free states whose paths read the execution's own input
MACHINE = {
    "StartAt": "Copy",
    "States": {
        "Copy": {"Type": "Pass", "Parameters": {"n.$": "$.n", "who.$": "$.who"}, "Next": "Parity"},
        "Parity": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThan": 9, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True},
    },
}


def _run_concurrently(sfn: Any, arn: str, n: int) -> dict[str, Any]:
    executions: dict[int, str] = {}

    def start(i: int) -> None:
        payload = json.dumps({"n": i, "who": f"e{i}"})
        executions[i] = sfn.start_execution(stateMachineArn=arn, name=f"e{i}", input=payload)["executionArn"]

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while len(outputs) < n and time.monotonic() < deadline:
        for i, execution in executions.items():
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                outputs[f"e{i}"] = (described["status"], json.loads(described.get("output", "null")))
        time.sleep(0.05)
    return outputs


@pytest.mark.usefixtures("moto")
def test_executions_sharing_one_parsed_definition_each_follow_their_own_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the patches, and a count of the definition's parses
    parses: list[str] = []
    original = patches._original(AmazonStateLanguageParser, "parse")

    def counted(definition: str) -> Any:
        parses.append(definition)
        return original(definition)

    with patches.installed():
        monkeypatch.setattr(patches, "_asl_programs", {})
        monkeypatch.setitem(patches._state.saved, (AmazonStateLanguageParser, "parse"), staticmethod(counted))
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="m", definition=json.dumps(MACHINE), roleArn=ROLE)[
            "stateMachineArn"
        ]

        # When 16 executions with different inputs run at once
        outputs = _run_concurrently(sfn, arn, 16)

    # Then the definition was parsed once, and each execution took its own path with its own data
    assert len(parses) == 1
    assert outputs == {
        f"e{i}": ("SUCCEEDED", {"n": i, "who": f"e{i}", "size": "big" if i > 9 else "small"})
        for i in range(16)
    }


@pytest.mark.usefixtures("moto")
def test_a_shared_update_expression_is_never_changed_by_the_update_that_used_it() -> None:
    # Given a table and one update expression used for different items, values and names
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    expression = "SET #f = :v, tags = list_append(if_not_exists(tags, :empty), :t) ADD hits :one"

    def update(pk: str, field: str, value: str) -> None:
        ddb.update_item(
            TableName="t",
            Key={"PK": {"S": pk}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#f": field},
            ExpressionAttributeValues={
                ":v": {"S": value},
                ":t": {"L": [{"S": value}]},
                ":empty": {"L": []},
                ":one": {"N": "1"},
            },
        )

    # When it updates items with the patches installed (the parsed expression is reused)
    with patches.installed():
        update("a", "colour", "red")
        update("b", "shape", "round")
        update("a", "colour", "blue")
        items = {pk: ddb.get_item(TableName="t", Key={"PK": {"S": pk}})["Item"] for pk in ("a", "b")}
        assert len(patches._update_asts) >= 1

    # Then each item holds its own values: nothing leaked from one update into the next
    assert items["a"] == {
        "PK": {"S": "a"},
        "colour": {"S": "blue"},
        "tags": {"L": [{"S": "red"}, {"S": "blue"}]},
        "hits": {"N": "2"},
    }
    assert items["b"] == {
        "PK": {"S": "b"},
        "shape": {"S": "round"},
        "tags": {"L": [{"S": "round"}]},
        "hits": {"N": "1"},
    }
