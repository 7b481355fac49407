"""The base of every Serval stack: named from the spec, tagged, bound to one environment.

A stack creates the spec queues it owns (:meth:`ServalStack.owned_queues`) with
their URL outputs, and the spec functions it places (:meth:`ServalStack.placed_functions`,
by default the consumers of its queues) through :meth:`ServalStack.build_functions`,
which wires each function's trigger, ``sends_to`` queues and started state machines
the same way in every stack.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from infra.constructs.naming import construct_id
from infra.constructs.queue import ServalQueue
from infra.spec import FunctionSpec, QueueRef, ServalSpec, SqsTrigger

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn

    from infra.constructs.function import ServalFunction
    from infra.constructs.shared import SharedResources


class ServalStack(Stack):
    concern: str = ""

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        """The spec queues (by id) this stack creates."""
        return ()

    @classmethod
    def placed_functions(cls, spec: ServalSpec) -> list[FunctionSpec]:
        """The spec functions this stack creates: by default those consuming one of its queues."""
        queues = cls.owned_queues(spec)
        return [
            f
            for f in spec.functions.values()
            if isinstance(f.trigger, SqsTrigger) and f.trigger.queue in queues
        ]

    def __init__(self, scope: Construct, *, spec: ServalSpec, env: Environment, **kwargs: Any) -> None:
        super().__init__(
            scope,
            spec.stack_name(self.concern),
            stack_name=spec.stack_name(self.concern),
            env=env,
            description=f"Serval {spec.config.name}: {self.concern.lower()}",
            tags={"project": "serval", "env": spec.config.name},
            **kwargs,
        )
        self.spec = spec
        self.state_machines: dict[str, sfn.IStateMachine] = {}  # the spec state machines this stack creates
        self._shared: SharedResources | None = None
        self._layer: lambda_.ILayerVersion | None = None
        self.queues: dict[str, ServalQueue] = {}
        for queue_id in self.owned_queues(spec):  # a dead-letter queue before the queues it serves
            queue_spec = spec.queues[queue_id]
            dead = queue_spec.dead_letter_queue
            queue = ServalQueue(
                self,
                construct_id(queue_id, "Queue"),
                queue_spec=queue_spec,
                dead_letter=self.queues[dead].queue if dead else None,
            )
            CfnOutput(self, f"{construct_id(queue_id)}QueueUrl", value=queue.queue.queue_url)
            CfnOutput(self, f"{construct_id(queue_id)}DlqUrl", value=queue.dlq.queue_url)
            self.queues[queue_id] = queue

    def queue(self, ref: QueueRef, shared: SharedResources) -> sqs.IQueue:
        """The queue ``ref`` names: this stack's own, else the owner stack's imported by name.

        A stack that sends to another stack's queue must deploy after it: see
        ``order_queue_senders`` in ``infra/app.py``.
        """
        owned = self.queues.get(ref.queue)
        if owned is None:
            return shared.queue(ref)
        return owned.dlq if ref.dead_letter else owned.queue

    def shared(self) -> SharedResources:
        """The spec resources of other stacks, imported by name (one set per stack)."""
        from infra.constructs.shared import SharedResources

        if self._shared is None:
            self._shared = SharedResources(self, "Shared", spec=self.spec)
        return self._shared

    def state_machine(self, machine_id: str) -> sfn.IStateMachine:
        """The state machine ``machine_id``: this stack's own, else the owner stack's imported by name."""
        return self.state_machines.get(machine_id) or self.shared().state_machine(machine_id)

    def build_functions(
        self,
        wiring: Callable[[FunctionSpec], dict[str, Any]] | None = None,
        *,
        streams: Mapping[str, dynamodb.ITable] | None = None,
        only: Collection[str] | None = None,
    ) -> dict[str, ServalFunction]:
        """One ServalFunction per placed spec function (or per ``only`` of them, by id), sharing one layer.

        Each gets its trigger (the stack's queues, or ``streams``: the tables whose streams
        this stack consumes, by spec id), its ``sends_to`` queues and the state machines it
        starts; ``wiring`` adds the rest (the user pool).
        """
        from infra.bundling import function_code
        from infra.constructs.function import ServalFunction, event_source
        from infra.constructs.layer import ServalLayer

        shared = self.shared()
        if self._layer is None:
            self._layer = ServalLayer(self, "Runtime").layer
        layer = self._layer
        own_queues = {queue_id: queue.queue for queue_id, queue in self.queues.items()}
        placed = [f for f in self.placed_functions(self.spec) if only is None or f.id in only]
        return {
            f.id: ServalFunction(
                self,
                construct_id(f.id, "Function"),
                spec=self.spec,
                function_spec=f,
                code=function_code(),
                layer=layer,
                tables=shared.tables,
                buckets=shared.buckets,
                bus=shared.bus,
                secrets=shared.secrets,
                source=event_source(f.trigger, queues=own_queues, tables=streams),
                send_to={variable: self.queue(ref, shared) for variable, ref in f.sends_to.items()},
                state_machines={
                    m: self.state_machine(m) for m in (*f.starts_executions, *f.manages_executions)
                },
                **(wiring(f) if wiring else {}),
            )
            for f in placed
        }
