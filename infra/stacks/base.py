"""The base of every Serval stack: named from the spec, tagged, bound to one environment."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stack
from constructs import Construct

from infra.spec import FunctionSpec, ServalSpec


class ServalStack(Stack):
    concern: str = ""

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        """The spec queues (by id) this stack creates."""
        return ()

    @staticmethod
    def placed_functions(spec: ServalSpec) -> list[FunctionSpec]:
        """The spec functions this stack creates."""
        return []

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
