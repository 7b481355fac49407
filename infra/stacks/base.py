"""The base of every Serval stack: named from the spec, tagged, bound to one environment."""

from __future__ import annotations

from collections.abc import Callable
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

    def build_functions(
        self, shared: Any, wiring: Callable[[FunctionSpec], dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """One ServalFunction per placed spec function, sharing one layer; ``wiring`` adds its trigger,
        queues or user pool."""
        from infra.bundling import function_code
        from infra.constructs.function import ServalFunction
        from infra.constructs.layer import ServalLayer
        from infra.constructs.naming import construct_id

        layer = ServalLayer(self, "Runtime")
        return {
            f.id: ServalFunction(
                self,
                construct_id(f.id, "Function"),
                spec=self.spec,
                function_spec=f,
                code=function_code(),
                layer=layer.layer,
                tables=shared.tables,
                buckets=shared.buckets,
                bus=shared.bus,
                **(wiring(f) if wiring else {}),
            )
            for f in self.placed_functions(self.spec)
        }

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
