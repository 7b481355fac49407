"""The REST API (API Gateway v1): a Lambda proxy behind the Cognito authorizer.

Every method requires a Cognito user pool token, except ``spec.api.public_routes``
(health and API documentation) and the CORS preflight ``OPTIONS`` methods, which
browsers send without credentials. With ``spec.api.authorization_scopes`` empty the
authorizer accepts id tokens; otherwise access tokens carrying one of those scopes.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.naming import log_retention, removal_policy
from infra.spec import ServalSpec


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

        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions-APIG3",
            "No WAF web ACL in the base deployment: the stage is throttled and every data route needs a "
            "Cognito token; attach an account-wide WAF web ACL to the stage where one exists.",
        )
        cloud_watch_role = self.api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            acknowledge(
                cloud_watch_role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level API Gateway logging role uses the AWS managed policy made for exactly this.",
            )

    @property
    def url(self) -> str:
        return self.api.url
