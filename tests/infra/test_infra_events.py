"""Table streams feed their consumers (events: tasks, chainer: audit) with bisection, retries and an on-failure queue."""

from __future__ import annotations

import json

import pytest
from cfn_helpers import flat, queues, resources, spec_functions

from infra.spec import ScheduleTrigger


def _mapping(synth, function_id):
    """The function's stack template and the properties of its one event source mapping."""
    template, function_logical_id, _ = spec_functions(synth)[function_id]
    (props,) = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_logical_id}
    ]
    return template, props


@pytest.mark.parametrize(("function_id", "table"), [("events", "Tasks"), ("chainer", "Audit")])
def test_stream_trigger_bisects_retries_and_parks_failures(synth, function_id, table):
    # Given the dev spec's stream trigger and failure queue of one stream consumer
    spec = synth.envs["dev"].spec
    trigger = spec.functions[function_id].trigger
    # When its event source mapping is read
    template, props = _mapping(synth, function_id)
    failed = {name: logical_id for name, (logical_id, _) in queues(template).items()}
    # Then it reads its table's stream, splits failing batches, retries, and sends failures to the queue
    assert f"{table}Table" in flat(props["EventSourceArn"]) and "StreamArn" in flat(props["EventSourceArn"])
    assert props["StartingPosition"] == trigger.starting_position
    assert props["BatchSize"] == trigger.batch_size
    assert props["MaximumBatchingWindowInSeconds"] == trigger.max_batching_window_s == 1
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == trigger.retry_attempts
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"] == {
        "OnFailure": {
            "Destination": {"Fn::GetAtt": [failed[spec.queues[trigger.on_failure_queue].name], "Arn"]}
        }
    }


def test_the_chainer_never_skips_an_audit_record(synth):
    # Given the chainer's event source mapping (the chain waits at a failing record until it links)
    _, props = _mapping(synth, "chainer")
    # Then it retries as often as Lambda allows, from the oldest record, and records never age out
    assert props["MaximumRetryAttempts"] == 10_000
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props.get("MaximumRecordAgeInSeconds", -1) == -1


def test_every_event_rule_forwards_bus_events_to_its_queue_with_a_dlq(synth):
    # Given the dev spec's event rules, each in the stack that owns its queue
    spec = synth.envs["dev"].spec
    stacks = synth.envs["dev"].stacks
    rules = {
        r["Properties"]["Name"]: (concern, logical_id, r["Properties"])
        for concern in stacks
        for logical_id, r in resources(synth.raw("dev", concern), "AWS::Events::Rule").items()
    }
    assert spec.event_rules
    assert set(rules) == {r.name for r in spec.event_rules}
    for rule_spec in spec.event_rules:
        concern, rule_id, props = rules[rule_spec.name]
        assert rule_spec.queue in stacks[concern].owned_queues(spec)
        template = synth.raw("dev", concern)
        queue_ids = {name: logical_id for name, (logical_id, _) in queues(template).items()}
        queue_spec = spec.queues[rule_spec.queue]
        # Then the rule sits on the spec's bus, with the spec's pattern, targeting the queue
        assert props["EventBusName"] == spec.event_bus_name
        assert props["EventPattern"] == json.loads(rule_spec.pattern)
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue_ids[queue_spec.name], "Arn"]}
        # And undeliverable events go to the queue's DLQ after EventBridge's retries
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_ids[queue_spec.dlq_name], "Arn"]}}
        # And EventBridge may send to both queues only on behalf of this rule
        for queue_name in (queue_spec.name, queue_spec.dlq_name):
            policy = next(
                p
                for p in resources(template, "AWS::SQS::QueuePolicy").values()
                if p["Properties"]["Queues"] == [{"Ref": queue_ids[queue_name]}]
            )
            allowed = [
                s
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if s.get("Principal") == {"Service": "events.amazonaws.com"}
            ]
            assert len(allowed) == 1
            assert allowed[0]["Condition"] == {
                "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}
            }


def test_every_scheduled_function_runs_on_its_rate_without_retries(synth):
    # Given the dev spec's functions with a schedule trigger (the reconciler)
    spec = synth.envs["dev"].spec
    scheduled = {f.name: f for f in spec.functions.values() if isinstance(f.trigger, ScheduleTrigger)}
    assert "serval-dev-reconciler" in scheduled
    schedules = {
        concern: r["Properties"]
        for concern in synth.envs["dev"].stacks
        for r in resources(synth.raw("dev", concern), "AWS::Scheduler::Schedule").values()
    }
    # Then each has one EventBridge schedule, at the spec's rate, in the stack of its function,
    # invoking it once per run (a failed run is not retried: the next one is its retry)
    assert sorted(p["Name"] for p in schedules.values()) == sorted(f"{name}-schedule" for name in scheduled)
    for concern, props in schedules.items():
        fn = scheduled[props["Name"].removesuffix("-schedule")]
        assert isinstance(fn.trigger, ScheduleTrigger)
        assert props["ScheduleExpression"] == f"rate({fn.trigger.every_minutes} minutes)"
        assert props.get("State", "ENABLED") == "ENABLED"
        assert props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
        functions = {
            logical_id
            for logical_id, r in resources(synth.raw("dev", concern), "AWS::Lambda::Function").items()
            if r["Properties"]["FunctionName"] == fn.name
        }
        assert props["Target"]["Arn"] == {"Fn::GetAtt": [functions.pop(), "Arn"]}
