"""The webhook dispatcher as deployed: its queue, the bus rule that fills it, the delivery log, its
alarms and its least-privilege grants, all as infra.spec declares them."""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from cfn_helpers import actions_of, flat, queues, resources, resources_of, role_statements, spec_functions

from infra.config import load
from infra.constructs.alarms import dead_letter_alarm_name, failure_rate_alarm_name
from infra.spec import PYTHON_RUNTIME, WEBHOOK_EVENT_PATTERN, FunctionSpec, SqsTrigger, build

ENVS = ("dev", "prod")


def _events_template(synth: Any, env: str) -> dict[str, Any]:
    return synth.raw(env, "Events")


def _mapping(template: dict[str, Any], function_logical_id: str) -> dict[str, Any]:
    (props,) = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_logical_id}
    ]
    return props


def _alarms(synth: Any, env: str) -> dict[str, dict[str, Any]]:
    """Alarm name -> properties, over every stack of the environment."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for concern in synth.envs[env].stacks
        for a in resources(synth.raw(env, concern), "AWS::CloudWatch::Alarm").values()
    }


def _table_actions(synth: Any, env: str, function_id: str, table_id: str) -> set[str]:
    """The DynamoDB actions a function's role allows on a table (or its indexes)."""
    template, _, props = spec_functions(synth, env)[function_id]
    name = synth.envs[env].spec.tables[table_id].name
    return {
        action
        for statement in role_statements(template, {"Ref": props["Role"]["Fn::GetAtt"][0]})
        if any(
            flat(r).endswith((f":table/{name}", f":table/{name}/index/*")) for r in resources_of(statement)
        )
        for action in actions_of(statement)
    }


@pytest.mark.parametrize("env", ENVS)
def test_the_dispatcher_runs_as_specified_on_its_queue_with_partial_batch_failures(synth, env):
    # Given the environment's dispatcher spec and the stack that places it
    spec = synth.envs[env].spec
    fs = spec.functions["webhooks"]
    assert isinstance(fs.trigger, SqsTrigger)
    template, function_id, props = spec_functions(synth, env)["webhooks"]
    assert template is _events_template(synth, env)
    # Then it runs the spec's handler on the spec's runtime, with its size and timeout
    assert props["FunctionName"] == fs.name
    assert props["Handler"] == fs.handler == "webhooks.handler.handler"
    assert props["Runtime"] == PYTHON_RUNTIME
    assert props["Timeout"] == fs.timeout_s
    assert props["MemorySize"] == fs.memory_mb
    # And it reads the webhooks queue in the spec's batches, reporting per-message failures
    queue_id, queue = queues(template)[spec.queues["webhooks"].name]
    mapping = _mapping(template, function_id)
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == fs.trigger.batch_size
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": spec.config.webhook_dispatch_concurrency}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # And a received message stays hidden for six invocations at least (Lambda's advice for SQS)
    assert queue["VisibilityTimeout"] >= 6 * fs.timeout_s


@pytest.mark.parametrize("env", ENVS)
def test_the_webhooks_queue_redrives_to_its_dlq_and_the_dispatcher_knows_both(synth, env):
    # Given the webhooks queue spec and the Events stack's queues
    spec = synth.envs[env].spec
    queue_spec = spec.queues["webhooks"]
    found = queues(_events_template(synth, env))
    queue_id, queue = found[queue_spec.name]
    dlq_id, dlq = found[queue_spec.dlq_name]
    # Then the queue hands a message to its DLQ after the spec's receives, both encrypted
    assert queue_spec.dlq_name == f"{spec.prefix}-webhooks-dlq"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": queue_spec.max_receive_count,
    }
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    # And the dispatcher is given both URLs: retries go to the queue, spent deliveries to the DLQ
    _, _, props = spec_functions(synth, env)["webhooks"]
    variables = props["Environment"]["Variables"]
    assert variables["WEBHOOKS_QUEUE_URL"] == {"Ref": queue_id}
    assert variables["WEBHOOKS_DLQ_URL"] == {"Ref": dlq_id}
    assert variables["DELIVERIES_TABLE"] == spec.tables["deliveries"].name


@pytest.mark.parametrize("env", ENVS)
def test_the_delivery_log_expires_its_rows_and_has_no_stream(synth, env):
    # Given the deliveries table spec and the Data stack's tables
    table_spec = synth.envs[env].spec.tables["deliveries"]
    (props,) = [
        t["Properties"]
        for t in resources(synth.raw(env, "Data"), "AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == table_spec.name
    ]
    # Then its rows expire through the TTL attribute, and no stream announces them
    assert props["TimeToLiveSpecification"] == {"AttributeName": table_spec.ttl_attribute, "Enabled": True}
    assert table_spec.stream is None and "StreamSpecification" not in props
    # And attempts are found by subscription (the table's keys) and by event (GSI1, its only index)
    assert [k["AttributeName"] for k in props["KeySchema"]] == [table_spec.pk, table_spec.sk]
    assert [i["IndexName"] for i in props["GlobalSecondaryIndexes"]] == ["GSI1"]


@pytest.mark.parametrize("env", ENVS)
def test_every_serval_event_on_the_bus_goes_to_the_webhooks_queue(synth, env):
    # Given the rule of the spec that targets the webhooks queue
    spec = synth.envs[env].spec
    (rule_spec,) = [r for r in spec.event_rules if r.queue == "webhooks"]
    template = _events_template(synth, env)
    (props,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if r["Properties"]["Name"] == rule_spec.name
    ]
    found = {name: logical_id for name, (logical_id, _) in queues(template).items()}
    queue_spec = spec.queues["webhooks"]
    # Then it matches every Serval event on the Serval bus (the dispatcher filters per subscription)
    assert rule_spec.name == f"{spec.prefix}-events-to-webhooks"
    assert rule_spec.pattern == WEBHOOK_EVENT_PATTERN
    assert props["EventPattern"] == json.loads(WEBHOOK_EVENT_PATTERN) == {"source": ["serval"]}
    assert props["EventBusName"] == spec.event_bus_name
    assert props["State"] == "ENABLED"
    # And it sends them to the webhooks queue, and what it cannot deliver to the queue's DLQ
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [found[queue_spec.name], "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [found[queue_spec.dlq_name], "Arn"]}}


def _without_actions(alarm: dict[str, Any]) -> None:
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        assert not alarm.get(key), key
    assert "No actions" in alarm["AlarmDescription"] and "SNS" in alarm["AlarmDescription"]


@pytest.mark.parametrize("env", ENVS)
def test_any_dead_letter_of_the_dispatcher_raises_an_alarm(synth, env):
    # Given the dispatcher's spec and its dead-letter alarm
    spec = synth.envs[env].spec
    fs = spec.functions["webhooks"]
    assert fs.alarms is not None
    alarm = _alarms(synth, env)[dead_letter_alarm_name(fs)]
    dlq_id, _ = queues(_events_template(synth, env))[spec.queues["webhooks"].dlq_name]
    # Then it fires as soon as one 5-minute datapoint sees a visible message in the DLQ
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == fs.alarms.dead_letter_window_s == 300
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    # And it notifies nobody, which its description says
    _without_actions(alarm)


@pytest.mark.parametrize("env", ENVS)
def test_most_deliveries_failing_raises_an_alarm_but_no_traffic_does_not(synth, env):
    # Given the dispatcher's spec and its failure-rate alarm
    fs = synth.envs[env].spec.functions["webhooks"]
    assert fs.alarms is not None
    alarm = _alarms(synth, env)[failure_rate_alarm_name(fs)]
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    # Then it reads the dispatcher's two Powertools counts, summed over 15 minutes
    for metric_id, name in (("failed", "DeliveriesFailed"), ("succeeded", "DeliveriesSucceeded")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": fs.environment["POWERTOOLS_METRICS_NAMESPACE"],
            "MetricName": name,
            "Dimensions": [{"Name": "service", "Value": "webhooks"}],
        }
        assert stat["Stat"] == "Sum" and stat["Period"] == fs.alarms.failure_window_s == 900
        assert metrics[metric_id]["ReturnData"] is False
    # And its rate is failed / (succeeded + failed), missing counts filled with 0, and 0 below the
    # minimum number of attempts (so no traffic is no alarm)
    attempts = "(FILL(succeeded, 0) + FILL(failed, 0))"
    assert expression["Expression"] == (
        f"IF({attempts} >= {fs.alarms.min_attempts}, FILL(failed, 0) / {attempts}, 0)"
    )
    assert expression["ReturnData"] is True
    # And more than half failing in one window fires it; no data at all leaves it OK
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == fs.alarms.max_failure_rate == 0.5
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    _without_actions(alarm)


@pytest.mark.parametrize("env", ENVS)
def test_exactly_the_alarms_the_spec_declares_are_deployed(synth, env):
    # Given the spec functions that declare alarms (in whatever stack places them)
    spec = synth.envs[env].spec
    declared = [f for f in spec.functions.values() if f.alarms is not None]
    assert [f.id for f in declared] == ["webhooks"]
    # Then each has its two alarms, and no other alarm exists
    assert set(_alarms(synth, env)) == {
        name for f in declared for name in (dead_letter_alarm_name(f), failure_rate_alarm_name(f))
    }


@dataclass
class _Context:
    function_name: str = "serval-dev-webhooks"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:serval-dev-webhooks"
    aws_request_id: str = "req"


def _imported_as_deployed(fs: FunctionSpec, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The function's handler module imported afresh with its POWERTOOLS_* environment, as its
    execution environment imports it (Powertools reads its service name and namespace then)."""
    for name, value in fs.environment.items():
        if name.startswith("POWERTOOLS_"):
            monkeypatch.setenv(name, value)
    module_name = fs.handler.rpartition(".")[0]
    package, _, leaf = module_name.rpartition(".")
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    if package in sys.modules:
        monkeypatch.delattr(sys.modules[package], leaf, raising=False)
    return importlib.import_module(module_name)


def test_the_dispatcher_emits_the_metrics_its_alarm_reads(monkeypatch, capsys):
    # Given the dispatcher's handler, imported with its function's environment, with a batch
    # outcome stubbed in (no AWS, no HTTP)
    from serval.logic import dispatch

    monkeypatch.setattr(dispatch, "dispatch", lambda records: dispatch.Report(delivered=3, failed=1))
    fs = build(load("dev"), "123456789012", "us-east-1").functions["webhooks"]
    assert fs.alarms is not None
    webhooks_handler = _imported_as_deployed(fs, monkeypatch)
    # When it handles a batch
    capsys.readouterr()
    webhooks_handler.handler({"Records": []}, _Context())
    # Then its metrics carry the names, namespace and service dimension the failure-rate alarm reads
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (blob,) = emitted
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == fs.environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert directive["Dimensions"] == [["service"]]
    assert blob["service"] == fs.environment["POWERTOOLS_SERVICE_NAME"]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {fs.alarms.failed_metric, fs.alarms.succeeded_metric} <= names
    assert (blob[fs.alarms.succeeded_metric], blob[fs.alarms.failed_metric]) == ([3], [1])


@pytest.mark.parametrize("env", ENVS)
def test_the_dispatcher_cannot_delete_tasks_items_and_the_api_cannot_batch_write_the_log(synth, env):
    # Given the DynamoDB actions of the dispatcher and the api on the tables they share
    dispatcher_on_tasks = _table_actions(synth, env, "webhooks", "tasks")
    dispatcher_on_log = _table_actions(synth, env, "webhooks", "deliveries")
    api_on_log = _table_actions(synth, env, "api", "deliveries")
    # Then the dispatcher only updates the tasks table (subscriptions' counters): no put, no delete
    assert "dynamodb:UpdateItem" in dispatcher_on_tasks
    assert not dispatcher_on_tasks & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem"}
    # And it writes the delivery log in batches
    assert "dynamodb:BatchWriteItem" in dispatcher_on_log
    # And the api reads the log and appends to it, but cannot batch-write, delete or rewrite it
    assert {"dynamodb:Query", "dynamodb:PutItem"} <= api_on_log
    assert not api_on_log & {"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}
