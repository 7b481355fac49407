from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput

from infra.constructs.naming import construct_id
from infra.constructs.routing import EventRoutes
from infra.constructs.workflow import ServalStateMachine
from infra.spec import FunctionSpec, ServalSpec, SqsTrigger, StateMachineTrigger
from infra.stacks.base import ServalStack


class WorkflowStack(ServalStack):
    """Task workflow: bus (task.created) -> executions queue -> starter -> state machine -> workflow function.

    Owns the queues of the functions that start executions (with the bus rules that feed
    them), every spec state machine, the functions its Task states invoke, the starters, and
    the reconciler, which reads the executions.
    The functions a state machine invokes are built first, the state machine from their
    ARNs, then the starters from its ARN: all references stay inside this stack.
    """

    concern = "Workflow"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        spec = self.spec
        owned = self.owned_queues(spec)
        EventRoutes(
            self,
            "Routes",
            spec=spec,
            rules=[rule for rule in spec.event_rules if rule.queue in owned],
            queues={k: (q.queue, q.dlq) for k, q in self.queues.items()},
        )
        invoked = {f for machine in spec.state_machines.values() for f in machine.substitutions.values()}
        self.functions = self.build_functions(only=invoked)
        self.machines: dict[str, ServalStateMachine] = {}
        for machine in spec.state_machines.values():
            built = ServalStateMachine(
                self,
                construct_id(machine.id, "Workflow"),
                spec=spec,
                machine=machine,
                functions={k: f.function for k, f in self.functions.items()},
            )
            self.machines[machine.id] = built
            self.state_machines[machine.id] = built.state_machine
            CfnOutput(
                self, construct_id(machine.id, "StateMachineArn"), value=built.state_machine.state_machine_arn
            )
        rest = {f.id for f in self.placed_functions(spec)} - invoked
        self.functions |= self.build_functions(only=rest)

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        """The queues of the functions that start executions (the throttled start of each execution)."""
        return tuple(
            dict.fromkeys(
                f.trigger.queue
                for f in spec.functions.values()
                if f.starts_executions and isinstance(f.trigger, SqsTrigger)
            )
        )

    @classmethod
    def placed_functions(cls, spec: ServalSpec) -> list[FunctionSpec]:
        """The starters (consumers of this stack's queues), the functions the state machines invoke,
        and those that read their executions (the reconciler)."""
        queue_consumers = super().placed_functions(spec)
        return [
            f
            for f in spec.functions.values()
            if isinstance(f.trigger, StateMachineTrigger) or f.manages_executions or f in queue_consumers
        ]
