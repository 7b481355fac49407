"""The REST API (API Gateway v1): a Lambda proxy behind the Cognito authorizer.

Every method requires a Cognito user pool token, except ``spec.api.public_routes``
(health and API documentation) and the CORS preflight ``OPTIONS`` methods, which
browsers send without credentials. With ``spec.api.authorization_scopes`` empty the
authorizer accepts id tokens; otherwise access tokens carrying one of those scopes.

CORS allows the environment's frontend origin only (``EnvConfig.frontend_origin``): on the
preflights here, on API Gateway's own answers (gateway responses, in the API's error
envelope) and, through ``CORS_ALLOW_ORIGIN``, on the api function's responses.

A WAF web ACL on the stage limits each client: per Authorization header (one signed-in
session) and per source IP, over ``client_rate_window_s``; a limited client gets a 429
in the error envelope while everyone else keeps the stage's own limit.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.naming import log_retention, removal_policy
from infra.spec import GatewayError, ServalSpec

WAF_THROTTLED_BODY = "throttled"


def gateway_response_template(error: GatewayError) -> str:
    """The error envelope API Gateway fills in for one of its own answers (a VTL template)."""
    return (
        f'{{"error": {{"code": {json.dumps(error.code)}, "message": $context.error.messageString, '
        '"details": {"request_id": "$context.requestId"}}}'
    )


def client_throttled_body() -> str:
    return json.dumps(
        {
            "error": {
                "code": "throttled",
                "message": "this client sent too many requests; retry later",
                "details": None,
            }
        }
    )


class ServalRestApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        handler: lambda_.IFunction,
        user_pool: cognito.IUserPool,
    ) -> None:
        super().__init__(scope, construct_id_)
        config = spec.config
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config),
            removal_policy=removal_policy(config),
        )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            cognito_user_pools=[user_pool],
            authorizer_name=f"{spec.prefix}-cognito",
            identity_source=apigw.IdentitySource.header("Authorization"),
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{spec.prefix}-api",
            description=f"Serval REST API ({config.name})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,  # execution logging needs the account's API Gateway log role
            deploy_options=apigw.StageOptions(
                stage_name=spec.api.stage_name,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request or response bodies
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=list(config.cors_allowed_origins),
                allow_methods=apigw.Cors.ALL_METHODS,
                allow_headers=[*apigw.Cors.DEFAULT_HEADERS, "Idempotency-Key"],
            ),
        )
        # The stack exports one named ApiUrl output instead of CDK's generated "RestApiEndpoint<hash>".
        self.api.node.try_remove_child("Endpoint")
        self.validator = self.api.add_request_validator(
            "RequestValidator",
            request_validator_name=f"{spec.prefix}-requests",
            # Effective where a method declares parameters or maps a model; the proxy's bodies
            # are validated by the handler's pydantic models (Powertools, 422).
            validate_request_parameters=True,
            validate_request_body=True,
        )
        integration = apigw.LambdaIntegration(
            handler,
            proxy=True,
            scope_permission_to_method=False,  # one invoke permission for the whole API
        )
        secured: dict[str, Any] = {
            "authorization_type": apigw.AuthorizationType.COGNITO,
            "authorizer": self.authorizer,
            "request_validator": self.validator,
        }
        if spec.api.authorization_scopes:
            secured["authorization_scopes"] = list(spec.api.authorization_scopes)
        self.api.root.add_method("ANY", integration, **secured)
        self.api.root.add_resource("{proxy+}").add_method("ANY", integration, **secured)

        self.public_methods: list[apigw.Method] = []
        for http_method, path in spec.api.public_routes:
            resource = self.api.root.resource_for_path(path)
            method = resource.add_method(
                http_method, integration, authorization_type=apigw.AuthorizationType.NONE
            )
            reason = (
                f"{http_method} {path} is public on purpose (spec.api.public_routes: health check, API docs)."
            )
            acknowledge(method, "AwsSolutions-APIG4", reason)
            acknowledge(method, "AwsSolutions-COG4", reason)
            self.public_methods.append(method)

        self.gateway_responses = self._gateway_responses(spec)
        self.web_acl = self._client_limits(spec)
        cloud_watch_role = self.api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            acknowledge(
                cloud_watch_role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level API Gateway logging role uses the AWS managed policy made for exactly this.",
            )

    def _gateway_responses(self, spec: ServalSpec) -> dict[str, apigw.GatewayResponse]:
        """API Gateway's own refusals (authorizer, throttling, size, timeouts) in the error envelope, with CORS."""
        headers = {"Access-Control-Allow-Origin": f"'{spec.config.frontend_origin}'"}
        return {
            response_type: self.api.add_gateway_response(
                response_type.title().replace("_", ""),
                type=apigw.ResponseType.of(response_type),
                status_code=None if error.status is None else str(error.status),
                response_headers=headers,
                templates={"application/json": gateway_response_template(error)},
            )
            for response_type, error in spec.api.gateway_errors.items()
        }

    def _client_limits(self, spec: ServalSpec) -> wafv2.CfnWebACL:
        """Rate-based WAF rules per session (Authorization header) and per source IP, on the stage."""
        config = spec.config

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        block = wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=429, custom_response_body_key=WAF_THROTTLED_BODY
                )
            )
        )

        def rate_rule(name: str, priority: int, limit: int, **key: Any) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                action=block,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=limit, evaluation_window_sec=config.client_rate_window_s, **key
                    )
                ),
                visibility_config=visibility(f"{spec.prefix}-{name}"),
            )

        session_key = wafv2.CfnWebACL.RateBasedStatementCustomKeyProperty(
            header=wafv2.CfnWebACL.RateLimitHeaderProperty(
                name="authorization",
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
            )
        )
        acl = wafv2.CfnWebACL(
            self,
            "ClientLimits",
            name=f"{spec.prefix}-api-clients",
            description="Per-client request limits on the Serval API stage",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            custom_response_bodies={
                WAF_THROTTLED_BODY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=client_throttled_body()
                )
            },
            rules=[
                rate_rule(
                    "per-session",
                    0,
                    config.token_rate_limit,
                    aggregate_key_type="CUSTOM_KEYS",
                    custom_keys=[session_key],
                ),
                rate_rule("per-ip", 1, config.ip_rate_limit, aggregate_key_type="IP"),
            ],
            visibility_config=visibility(f"{spec.prefix}-api-clients"),
        )
        wafv2.CfnWebACLAssociation(
            self,
            "ClientLimitsAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        return acl

    @property
    def url(self) -> str:
        return self.api.url
