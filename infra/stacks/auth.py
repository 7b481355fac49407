from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput

from infra.constructs.auth import ServalUserPool
from infra.stacks.base import ServalStack


class AuthStack(ServalStack):
    """Cognito user pool, role groups, app client and managed-login domain."""

    concern = "Auth"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        self.auth = ServalUserPool(self, "Auth", spec=self.spec)
        CfnOutput(self, "UserPoolId", value=self.auth.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.auth.client.user_pool_client_id)
        CfnOutput(self, "LoginDomain", value=self.auth.domain.base_url())
