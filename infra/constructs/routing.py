"""EventBridge rules on the Serval bus that forward matching events to SQS queues."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.naming import construct_id
from infra.spec import EventRuleSpec, ServalSpec

# EventBridge keeps retrying a failed delivery for up to a day before it uses the target's DLQ.
MAX_EVENT_AGE_S = 24 * 3600
MAX_RETRY_ATTEMPTS = 185


class EventRoutes(Construct):
    """One rule per entry of ``rules`` (``spec.event_rules`` by default); a delivery that keeps
    failing lands in the queue's DLQ. Each stack routes the rules of the queues it owns.

    The rules are L1 ``CfnRule``s because the spec carries the event pattern as raw
    JSON, which the typed L2 ``EventPattern`` cannot express in general. The
    queue policies are therefore written here: EventBridge may send to each queue
    (and its DLQ) only on behalf of that one rule.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        queues: Mapping[str, tuple[sqs.IQueue, sqs.IQueue]],
        rules: Sequence[EventRuleSpec] | None = None,
    ) -> None:
        """``queues``: spec queue id -> (queue, its dead-letter queue)."""
        super().__init__(scope, construct_id_)
        self.rules: dict[str, events.CfnRule] = {}
        for rule_spec in spec.event_rules if rules is None else rules:
            if rule_spec.queue not in queues:
                raise ValueError(f"event rule {rule_spec.name!r} needs queue {rule_spec.queue!r}")
            queue, dlq = queues[rule_spec.queue]
            rule = events.CfnRule(
                self,
                construct_id(rule_spec.name.removeprefix(f"{spec.prefix}-"), "Rule"),
                name=rule_spec.name,
                event_bus_name=spec.event_bus_name,
                event_pattern=json.loads(rule_spec.pattern),
                state="ENABLED",
                targets=[
                    events.CfnRule.TargetProperty(
                        id=rule_spec.queue,
                        arn=queue.queue_arn,
                        dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=dlq.queue_arn),
                        retry_policy=events.CfnRule.RetryPolicyProperty(
                            maximum_event_age_in_seconds=MAX_EVENT_AGE_S,
                            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
                        ),
                    )
                ],
            )
            for target in (queue, dlq):
                target.add_to_resource_policy(
                    iam.PolicyStatement(
                        sid=f"From{construct_id(rule_spec.queue)}Rule",
                        principals=[iam.ServicePrincipal("events.amazonaws.com")],
                        actions=["sqs:SendMessage"],
                        resources=[target.queue_arn],
                        conditions={"ArnEquals": {"aws:SourceArn": rule.attr_arn}},
                    )
                )
            self.rules[rule_spec.name] = rule
