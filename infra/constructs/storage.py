"""S3 buckets: raw media and manifests (data), export output (exports), and their access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.naming import construct_id, removal_policy
from infra.spec import BucketSpec, ServalSpec

ABORT_MULTIPART_AFTER = Duration.days(1)


class ServalBuckets(Construct):
    """Every bucket of ``spec.buckets``, encrypted, private, TLS-only, with server access logs."""

    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        config = spec.config
        self._spec = spec
        self._removal = removal_policy(config)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery cannot write to SSE-KMS buckets
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.log_retention_days),
                    abort_incomplete_multipart_upload_after=ABORT_MULTIPART_AFTER,
                )
            ],
            removal_policy=self._removal,
            auto_delete_objects=self._removal == RemovalPolicy.DESTROY,
        )
        self.buckets: dict[str, s3.Bucket] = {b.id: self._bucket(b) for b in spec.buckets.values()}

    def _lifecycle(self, bucket: BucketSpec) -> list[s3.LifecycleRule]:
        config = self._spec.config
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=ABORT_MULTIPART_AFTER
            )
        ]
        if bucket.versioned:
            rules.append(
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(config.noncurrent_version_expiration_days),
                )
            )
        rules += [
            s3.LifecycleRule(
                id=f"expire-{prefix.strip('/')}",
                prefix=prefix,
                expiration=Duration.days(config.export_expiration_days),
            )
            for prefix in bucket.temporary_prefixes
        ]
        if bucket.audit_evidence_prefix and config.audit_ttl_days:
            rules.append(
                s3.LifecycleRule(
                    id="expire-audit-evidence",
                    prefix=bucket.audit_evidence_prefix,
                    expiration=Duration.days(config.audit_ttl_days),
                )
            )
        return rules

    def _cors(self, bucket: BucketSpec) -> list[s3.CorsRule] | None:
        rule = self._spec.bucket_cors(bucket)
        if rule is None:
            return None
        return [
            s3.CorsRule(
                allowed_methods=[s3.HttpMethods(m) for m in rule.methods],
                allowed_origins=list(rule.origins),
                allowed_headers=list(rule.allowed_headers),
                exposed_headers=list(rule.exposed_headers),
                max_age=rule.max_age_s,
            )
        ]

    def _bucket(self, bucket: BucketSpec) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id(bucket.id, "Bucket"),
            bucket_name=bucket.name,
            versioned=bucket.versioned,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            cors=self._cors(bucket),
            lifecycle_rules=self._lifecycle(bucket),
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{bucket.id}/",
            removal_policy=self._removal,
            auto_delete_objects=self._removal == RemovalPolicy.DESTROY,
        )
