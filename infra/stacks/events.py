from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_dynamodb as dynamodb

from infra.constructs.function import event_source
from infra.constructs.naming import construct_id
from infra.constructs.queue import ServalQueue
from infra.constructs.routing import EventRoutes
from infra.constructs.shared import SharedResources
from infra.spec import FunctionSpec, ServalSpec, SqsTrigger, StreamTrigger
from infra.stacks.base import ServalStack


class EventsStack(ServalStack):
    """Event flow: table streams -> stream consumers -> bus -> rules -> queues -> their consumers.

    Owns the stream consumers' on-failure queues and the queues the bus rules
    target, plus every function triggered by a stream or by one of those queues.
    """

    concern = "Events"

    def __init__(self, scope: Any, *, streams: dict[str, dynamodb.ITable], **kwargs: Any) -> None:
        """``streams``: the tables whose streams are consumed (the Data stack's tables, by spec id)."""
        super().__init__(scope, **kwargs)
        spec = self.spec
        shared = SharedResources(self, "Shared", spec=spec)
        self.queues = {
            queue_id: ServalQueue(self, construct_id(queue_id, "Queue"), queue_spec=spec.queues[queue_id])
            for queue_id in self.owned_queues(spec)
        }
        EventRoutes(self, "Routes", spec=spec, queues={k: (q.queue, q.dlq) for k, q in self.queues.items()})
        queues = {k: q.queue for k, q in self.queues.items()}
        self.functions = self.build_functions(
            shared, lambda f: {"source": event_source(f.trigger, tables=streams, queues=queues)}
        )
        for queue_id, queue in self.queues.items():
            CfnOutput(self, f"{construct_id(queue_id)}QueueUrl", value=queue.queue.queue_url)

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        failure_queues = [
            f.trigger.on_failure_queue
            for f in spec.functions.values()
            if isinstance(f.trigger, StreamTrigger) and f.trigger.on_failure_queue
        ]
        return tuple(dict.fromkeys([*failure_queues, *(rule.queue for rule in spec.event_rules)]))

    @classmethod
    def placed_functions(cls, spec: ServalSpec) -> list[FunctionSpec]:
        queues = cls.owned_queues(spec)
        return [
            f
            for f in spec.functions.values()
            if isinstance(f.trigger, StreamTrigger)
            or (isinstance(f.trigger, SqsTrigger) and f.trigger.queue in queues)
        ]
