from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_cognito as cognito

from infra.constructs.api import ServalRestApi
from infra.spec import ApiTrigger, FunctionSpec, ServalSpec
from infra.stacks.base import ServalStack


class ApiStack(ServalStack):
    """The api function behind the REST API and its Cognito authorizer."""

    concern = "Api"

    def __init__(self, scope: Any, *, user_pool: cognito.IUserPool, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        spec = self.spec
        (function_spec,) = self.placed_functions(spec)  # exactly one function serves the API
        self.functions = self.build_functions(lambda f: {"user_pool": user_pool})
        self.handler = self.functions[function_spec.id]
        self.rest_api = ServalRestApi(
            self, "RestApi", spec=spec, handler=self.handler.function, user_pool=user_pool
        )
        CfnOutput(self, "ApiUrl", value=self.rest_api.url)

    @classmethod
    def placed_functions(cls, spec: ServalSpec) -> list[FunctionSpec]:
        """The functions this stack owns: the API handler."""
        return [f for f in spec.functions.values() if isinstance(f.trigger, ApiTrigger)]
