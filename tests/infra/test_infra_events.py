"""The tasks stream feeds the events function with bisection, retries and an on-failure queue."""

from __future__ import annotations

import json

from cfn_helpers import flat, only, resources


def test_stream_trigger_bisects_retries_and_parks_failures(synth):
    # Given the dev spec's stream trigger and failure queue
    spec = synth.envs["dev"].spec
    trigger = spec.functions["events"].trigger
    template = synth.raw("dev", "Events")
    failed = {
        q["Properties"]["QueueName"]: logical_id
        for logical_id, q in resources(template, "AWS::SQS::Queue").items()
    }
    # When the event source mapping is read
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    # Then it reads the tasks table's stream, splits failing batches, retries, and sends failures to the queue
    assert "TasksTable" in flat(props["EventSourceArn"]) and "StreamArn" in flat(props["EventSourceArn"])
    assert props["StartingPosition"] == trigger.starting_position
    assert props["BatchSize"] == trigger.batch_size
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == trigger.retry_attempts
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["DestinationConfig"] == {
        "OnFailure": {
            "Destination": {"Fn::GetAtt": [failed[spec.queues[trigger.on_failure_queue].name], "Arn"]}
        }
    }


def test_every_event_rule_forwards_bus_events_to_its_queue_with_a_dlq(synth):
    # Given the dev spec's event rules
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Events")
    queues = {
        q["Properties"]["QueueName"]: logical_id
        for logical_id, q in resources(template, "AWS::SQS::Queue").items()
    }
    rules = {
        r["Properties"]["Name"]: (logical_id, r["Properties"])
        for logical_id, r in resources(template, "AWS::Events::Rule").items()
    }
    assert spec.event_rules
    assert set(rules) == {r.name for r in spec.event_rules}
    for rule_spec in spec.event_rules:
        rule_id, props = rules[rule_spec.name]
        queue_spec = spec.queues[rule_spec.queue]
        # Then the rule sits on the spec's bus, with the spec's pattern, targeting the queue
        assert props["EventBusName"] == spec.event_bus_name
        assert props["EventPattern"] == json.loads(rule_spec.pattern)
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queues[queue_spec.name], "Arn"]}
        # And undeliverable events go to the queue's DLQ after EventBridge's retries
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queues[queue_spec.dlq_name], "Arn"]}}
        # And EventBridge may send to both queues only on behalf of this rule
        for queue_name in (queue_spec.name, queue_spec.dlq_name):
            policy = next(
                p
                for p in resources(template, "AWS::SQS::QueuePolicy").values()
                if p["Properties"]["Queues"] == [{"Ref": queues[queue_name]}]
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
