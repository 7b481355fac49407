from __future__ import annotations

from typing import Any

from aws_cdk import aws_dynamodb as dynamodb

from infra.constructs.alarms import ServalAlarms
from infra.constructs.routing import EventRoutes
from infra.spec import FunctionSpec, ServalSpec, StreamTrigger
from infra.stacks.base import ServalStack
from infra.stacks.workflow import WorkflowStack


class EventsStack(ServalStack):
    """Event flow: table streams -> stream consumers -> bus -> rules -> queues -> their consumers.

    Owns the stream consumers' on-failure queues and the queues the bus rules
    target (except the Workflow stack's, which routes its own), plus every function
    triggered by a stream (the events function on the tasks table, the audit chainer
    on the audit table) or by one of those queues, with the alarms those functions declare
    (the webhook dispatcher's dead letters and failure rate).
    """

    concern = "Events"

    def __init__(self, scope: Any, *, streams: dict[str, dynamodb.ITable], **kwargs: Any) -> None:
        """``streams``: the tables whose streams are consumed (the Data stack's tables, by spec id)."""
        super().__init__(scope, **kwargs)
        owned = self.owned_queues(self.spec)
        EventRoutes(
            self,
            "Routes",
            spec=self.spec,
            rules=[rule for rule in self.spec.event_rules if rule.queue in owned],
            queues={k: (q.queue, q.dlq) for k, q in self.queues.items()},
        )
        self.functions = self.build_functions(streams=streams)
        self.alarms = ServalAlarms(
            self, "Alarms", spec=self.spec, functions=self.placed_functions(self.spec), queues=self.queues
        ).alarms

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        failure_queues = [
            f.trigger.on_failure_queue
            for f in spec.functions.values()
            if isinstance(f.trigger, StreamTrigger) and f.trigger.on_failure_queue
        ]
        elsewhere = WorkflowStack.owned_queues(spec)
        routed = [rule.queue for rule in spec.event_rules if rule.queue not in elsewhere]
        return tuple(dict.fromkeys([*failure_queues, *routed]))

    @classmethod
    def placed_functions(cls, spec: ServalSpec) -> list[FunctionSpec]:
        queue_consumers = super().placed_functions(spec)
        return [
            f for f in spec.functions.values() if isinstance(f.trigger, StreamTrigger) or f in queue_consumers
        ]
