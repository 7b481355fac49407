from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cognito as cognito

from infra.constructs.frontend import ServalFrontend
from infra.spec import web_config
from infra.stacks.base import ServalStack

LOGOUT_PATH = "/logout"  # Cognito managed login's logout endpoint, on the user pool domain


class FrontendStack(ServalStack):
    """The web app on S3 + CloudFront, with its config.json (the API URL and the Cognito ids)."""

    concern = "Frontend"

    def __init__(
        self,
        scope: Any,
        *,
        user_pool: cognito.IUserPool,
        client: cognito.IUserPoolClient,
        domain: cognito.UserPoolDomain,
        api_url: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, **kwargs)
        region = Stack.of(self).region
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool.user_pool_id}"
        login_url = domain.base_url()
        config = web_config(
            self.spec,
            api_url=api_url,
            region=region,
            issuer=issuer,
            metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_id=client.user_pool_client_id,
            end_session_endpoint=login_url + LOGOUT_PATH,
        )
        self.frontend = ServalFrontend(
            self, "Frontend", spec=self.spec, web_config=config, api_url=api_url, login_url=login_url
        )
        CfnOutput(self, "WebAppUrl", value=f"https://{self.frontend.distribution.distribution_domain_name}")
        CfnOutput(self, "SiteBucketName", value=self.frontend.bucket.bucket_name)
