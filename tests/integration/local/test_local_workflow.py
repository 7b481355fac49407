"""The local stack's task workflow: the state machine from the spec's ASL file, and task.created routing."""

from __future__ import annotations

import json
import uuid

import boto3

from infra.local.resources import LocalResources
from infra.spec import ServalSpec


def test_provision_creates_each_state_machine_from_its_file_with_the_function_arns(
    resources: LocalResources, spec: ServalSpec
) -> None:
    stepfunctions, lambda_ = boto3.client("stepfunctions"), boto3.client("lambda")
    assert spec.state_machines
    for machine_id, machine in spec.state_machines.items():
        # Given a spec state machine, provisioned on moto
        described = stepfunctions.describe_state_machine(
            stateMachineArn=resources.state_machine_arns[machine_id]
        )
        # Then it has the spec's name, type and a Step Functions role
        assert described["name"] == machine.name
        assert described["type"] == machine.type
        role = boto3.client("iam").get_role(RoleName=described["roleArn"].rsplit("/", 1)[1])["Role"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "states.amazonaws.com"
        }
        # And its definition is the ASL file with each placeholder replaced by its function's ARN
        expected = machine.definition_file.read_text()
        for placeholder, function_id in machine.substitutions.items():
            arn = lambda_.get_function(FunctionName=spec.functions[function_id].name)["Configuration"][
                "FunctionArn"
            ]
            expected = expected.replace(f"${{{placeholder}}}", arn)
        assert "${" not in expected
        assert json.loads(described["definition"]) == json.loads(expected)


def test_starters_get_the_state_machine_arn_as_cdk_gives_it(
    resources: LocalResources, spec: ServalSpec
) -> None:
    lambda_ = boto3.client("lambda")
    starters = [f for f in spec.functions.values() if f.starts_executions]
    assert starters
    for fn in starters:
        # Given a function that starts executions
        variables = lambda_.get_function_configuration(FunctionName=fn.name)["Environment"]["Variables"]
        # Then STATE_MACHINE_ARN is the ARN of the machine it starts, which exists
        (machine_id,) = fn.starts_executions
        assert variables["STATE_MACHINE_ARN"] == resources.state_machine_arns[machine_id]
    # And a function that manages the machine's executions (the reconciler) gets the same ARN
    for fn in spec.functions.values():
        if fn.manages_executions:
            variables = lambda_.get_function_configuration(FunctionName=fn.name)["Environment"]["Variables"]
            (machine_id,) = fn.manages_executions
            assert variables["STATE_MACHINE_ARN"] == resources.state_machine_arns[machine_id]
    # And no other function gets the variable
    for fn in spec.functions.values():
        if not fn.starts_executions and not fn.manages_executions:
            variables = lambda_.get_function_configuration(FunctionName=fn.name)["Environment"]["Variables"]
            assert "STATE_MACHINE_ARN" not in variables, fn.id


def test_task_created_events_reach_the_executions_queue_and_others_do_not(
    resources: LocalResources, spec: ServalSpec
) -> None:
    # Given the executions queue's rule on the bus
    (rule,) = [r for r in spec.event_rules if "task.created" in r.pattern]
    sqs, events = boto3.client("sqs"), boto3.client("events")
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    detail = json.dumps({"project_id": "p-1", "task_id": task_id})
    # When a task.created and a task.completed event are put on the bus
    events.put_events(
        Entries=[
            {"EventBusName": spec.event_bus_name, "Source": "serval", "DetailType": kind, "Detail": detail}
            for kind in ("task.created", "task.completed")
        ]
    )
    # Then the executions queue holds the task.created event, and only that one
    received = sqs.receive_message(
        QueueUrl=resources.queue_urls[rule.queue], MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    bodies = [json.loads(m["Body"]) for m in received]
    assert [(b["detail-type"], b["detail"]["task_id"]) for b in bodies] == [("task.created", task_id)]
