from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_cognito as cognito

from infra.bundling import function_code
from infra.constructs.api import ServalRestApi
from infra.constructs.function import ServalFunction
from infra.constructs.layer import ServalLayer
from infra.constructs.shared import SharedResources
from infra.spec import ApiTrigger, FunctionSpec, ServalSpec
from infra.stacks.base import ServalStack


class ApiStack(ServalStack):
    """The api function behind the REST API and its Cognito authorizer."""

    concern = "Api"

    def __init__(self, scope: Any, *, user_pool: cognito.IUserPool, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        spec = self.spec
        (function_spec,) = self.placed_functions(spec)  # exactly one function serves the API
        shared = SharedResources(self, "Shared", spec=spec)
        layer = ServalLayer(self, "Runtime")
        self.handler = ServalFunction(
            self,
            "ApiFunction",
            spec=spec,
            function_spec=function_spec,
            code=function_code(),
            layer=layer.layer,
            tables=shared.tables,
            buckets=shared.buckets,
            bus=shared.bus,
            user_pool=user_pool,
        )
        self.functions = {function_spec.id: self.handler}
        self.rest_api = ServalRestApi(
            self, "RestApi", spec=spec, handler=self.handler.function, user_pool=user_pool
        )
        CfnOutput(self, "ApiUrl", value=self.rest_api.url)

    @staticmethod
    def placed_functions(spec: ServalSpec) -> list[FunctionSpec]:
        """The functions this stack owns: the API handler."""
        return [f for f in spec.functions.values() if isinstance(f.trigger, ApiTrigger)]
