"""The web app's hosting: a private S3 bucket behind CloudFront (origin access control).

- SPA routing: a viewer-request CloudFront Function sends page routes (a last path segment
  without a dot: ``/``, ``/projects/p-1``) to ``/index.html``; a missing file (``/assets/x.js``)
  stays a 404, so no error response rewrites it.
- Security headers on every answer (a response headers policy): a strict Content-Security-Policy
  that names the only hosts the app talks to (the API, the Cognito domain and issuer, the
  buckets' presigned URLs), HSTS, nosniff, DENY framing, a strict referrer policy.
- The built app (``frontend/dist``) is deployed with ``BucketDeployment``; without a build at
  synth time a placeholder page is deployed instead, so synth works on a clean clone.
- ``config.json`` is written by CDK with the deploy-time API URL and Cognito ids
  (:func:`infra.spec.web_config`), and is never cached by CloudFront.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.constructs.nag import S3_GRANT_ACTIONS, acknowledge, flatten_cfn_reference, wildcard_findings
from infra.constructs.naming import removal_policy
from infra.spec import ServalSpec
from infra.web_headers import PERMISSIONS_POLICY, content_security_policy

PLACEHOLDER_HTML = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Serval</title></head>'
    "<body><p>The Serval web app was not built when this stack was synthesized: run "
    "<code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>, then deploy again.</p>"
    "</body></html>"
)

INVALIDATION_ACTIONS = frozenset({"cloudfront:GetInvalidation", "cloudfront:CreateInvalidation"})

# Page routes (no dot in the last segment) get the app's index.html; files are served as they are.
SPA_ROUTING_JS = """function handler(event) {
  var request = event.request;
  var last = request.uri.split('/').pop();
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
"""


class ServalFrontend(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        web_config: dict[str, Any],
        api_url: str,
        login_url: str,
    ) -> None:
        super().__init__(scope, construct_id_)
        config = spec.config
        removal = removal_policy(config)
        region = Stack.of(self).region
        self.logs = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # CloudFront standard logging writes with ACLs: this bucket alone keeps them
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.log_retention_days))
            ],
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="site/",
            removal_policy=removal,
            auto_delete_objects=removal == RemovalPolicy.DESTROY,
        )
        media = [
            host
            for bucket in spec.buckets.values()
            for host in (
                f"https://{bucket.name}.s3.{region}.amazonaws.com",
                f"https://{bucket.name}.s3.amazonaws.com",
            )
        ]
        issuer_host = f"https://cognito-idp.{region}.amazonaws.com"
        self.csp = content_security_policy(
            connect=[api_url, login_url, issuer_host], media=media, forms=[login_url]
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"Serval {config.name}: web app security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=self.csp, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730),
                    include_subdomains=True,
                    preload=True,
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy",
                        value=PERMISSIONS_POLICY,
                        override=True,
                    ),
                    cloudfront.ResponseCustomHeader(
                        header="Cross-Origin-Opener-Policy", value="same-origin", override=True
                    ),
                ]
            ),
        )
        routing = cloudfront.Function(
            self,
            "SpaRouting",
            code=cloudfront.FunctionCode.from_inline(SPA_ROUTING_JS),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            comment="Page routes get /index.html; files are served as they are",
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", config.frontend_certificate_arn)
            if config.frontend_certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"Serval {config.name} web app",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=routing, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            additional_behaviors={
                spec.frontend.config_path: cloudfront.BehaviorOptions(
                    origin=origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    response_headers_policy=self.headers,
                )
            },
            domain_names=[urlsplit(config.frontend_origin).hostname or ""] if certificate else None,
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cdn/",
        )
        dist = spec.frontend.dist_dir
        self.app_built = (dist / "index.html").is_file()
        app = (
            s3deploy.Source.asset(str(dist), exclude=[spec.frontend.config_path.lstrip("/")])
            if self.app_built
            else s3deploy.Source.data("index.html", PLACEHOLDER_HTML)
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[app, s3deploy.Source.json_data(spec.frontend.config_path.lstrip("/"), web_config)],
            destination_bucket=self.bucket,
            # browsers revalidate (ETags); the deployment invalidates CloudFront's copies
            cache_control=[s3deploy.CacheControl.no_cache()],
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=512,
        )
        self._acknowledge(config.name, certificate is not None)

    def _acknowledge(self, env_name: str, has_certificate: bool) -> None:
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The web app is for an organisation's annotators wherever they work; access is decided by "
            "Cognito login and the API's authorizer, not by country.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves static files only; the API, where requests cost and matter, has "
            "its own WAF web ACL with per-client rate limits.",
        )
        if not has_certificate:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR4",
                f"{env_name} has no frontend_certificate_arn, so CloudFront serves its default "
                "*.cloudfront.net certificate, whose TLS policy cannot be set; with a certificate the "
                "minimum is TLS 1.2 (2021).",
            )
        self._acknowledge_deployment_role()

    def _acknowledge_deployment_role(self) -> None:
        """BucketDeployment's provider (a singleton function at the stack's root): what CDK grants it.

        Each IAM5 finding of its policy is acknowledged only if it is one of the grants CDK makes
        for the copy (the asset bucket's and the site bucket's objects, the grant action families)
        or for the invalidation (CloudFront's invalidation actions); anything else fails the synth.
        """
        role = self.deployment.handler_role
        stack = Stack.of(self)
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's BucketDeployment provider writes its own logs with AWSLambdaBasicExecutionRole.",
        )
        for child in stack.node.children:  # the provider function itself
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "CDK pins BucketDeployment's provider runtime; it moves with aws-cdk-lib upgrades.",
                )
        policy = role.node.try_find_child("DefaultPolicy")
        if not isinstance(policy, iam.Policy):
            return
        site_objects = flatten_cfn_reference(stack.resolve(self.bucket.bucket_arn)) + "/*"
        for finding, actions in wildcard_findings(stack.resolve(policy.document)):
            reason = None
            if finding.removeprefix("Action::") in S3_GRANT_ACTIONS:
                reason = (
                    "the action family of Bucket.grant_read/grant_read_write, on the asset and site buckets"
                )
            elif finding == f"Resource::{site_objects}":
                reason = "the deployment writes and prunes the site bucket's objects"
            elif finding.startswith("Resource::") and "-assets-" in finding and finding.endswith("/*"):
                reason = "the deployment reads the built app from the CDK asset bucket's objects"
            elif finding == "Resource::*" and actions <= INVALIDATION_ACTIONS:
                reason = "BucketDeployment grants CloudFront invalidation on every distribution (CDK's grant)"
            if reason is not None:
                acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
