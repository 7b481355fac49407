"""Per-environment configuration, validated with pydantic.

``cdk deploy -c env=NAME`` picks one of these; the local stack uses ``local``.
Environments differ only in these values, never in code paths.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EnvName = Literal["local", "dev", "staging", "prod"]
ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")


class EnvConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: EnvName
    account: str | None = Field(default=None, description="Target account; None = the CLI's default.")
    region: str = "us-east-1"
    retain_data: bool = Field(
        description="Keep tables, buckets and the user pool when the stack is destroyed."
    )
    point_in_time_recovery: bool = True
    deletion_protection: bool = False
    log_retention_days: int = 30
    audit_ttl_days: int = Field(ge=0, description="Expire audit records after N days; 0 keeps them forever.")
    lease_seconds: int = Field(default=1800, ge=60, le=86_400)
    media_url_seconds: int = Field(
        default=900,
        ge=60,
        le=86_400,
        description="Lifetime of the presigned GET URLs of a task's media that a lease, a heartbeat and "
        "the task's detail hand out; at most lease_seconds, so a heartbeat always brings fresh ones.",
    )
    reservation_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="A task reserved for a member (assigned, or back to its last annotator on rework) "
        "is offered to anyone after this long.",
    )
    ingest_batch_size: int = Field(default=10, ge=1, le=10)
    ingest_max_concurrency: int = Field(default=10, ge=2, le=1000)
    ingest_max_receive_count: int = Field(default=5, ge=1, le=1000)
    ingest_range_bytes: int = Field(
        default=16 * 2**20,
        ge=64 * 2**10,
        le=1024 * 2**20,
        description="A manifest larger than this is split into byte ranges of this size (at most "
        "10,000, larger when the manifest needs more), each processed by its own invocation.",
    )
    ingest_range_concurrency: int = Field(
        default=20, ge=2, le=1000, description="Byte ranges of large manifests processed at once."
    )
    api_rate_limit: int = 200
    api_burst_limit: int = 400
    # Per-client limits (a WAF web ACL on the stage), so one client cannot use up the stage's limit.
    # Requests per ``client_rate_window_s``; WAF counts over that sliding window.
    client_rate_window_s: Literal[60, 120, 300, 600] = 60
    token_rate_limit: int = Field(
        default=600,
        ge=10,
        description="Requests per window per Authorization header (one signed-in session).",
    )
    ip_rate_limit: int = Field(
        default=3000,
        ge=10,
        description="Requests per window per source IP, token or not (offices share an IP).",
    )
    api_call_deadline_s: float = Field(
        default=12,
        ge=0,
        le=20,
        description="No AWS call of an API request starts this long after it began (429); 0 = none.",
    )
    cognito_advanced_security: bool = False
    cognito_self_sign_up: bool = False
    frontend_origin: str = Field(
        description="The web app's origin (scheme://host[:port]): the only origin CORS allows, "
        "on the API's preflight, its own responses and gateway errors, and the buckets."
    )
    frontend_certificate_arn: str | None = Field(
        default=None,
        description="An ACM certificate (in us-east-1) for frontend_origin's host: CloudFront then "
        "serves the web app on that name with TLS 1.2+. Without one it is served on its "
        "*.cloudfront.net name only.",
    )
    noncurrent_version_expiration_days: int = 30
    export_expiration_days: int = 7
    active_window: int = Field(
        default=1000, ge=1, le=100_000, description="Open task executions per project at most."
    )
    auth_cache_seconds: int = Field(
        default=30, ge=0, le=300, description="How long the API caches a user's enabled status."
    )
    max_bulk_create: int = Field(default=1000, ge=1, le=1000)
    export_shard_tasks: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="Tasks per shard of a dataset export; a larger project's export fans out over SQS.",
    )

    # Webhooks (serval.domain.webhooks holds the retry schedule and the delivery rules)
    webhook_disable_after_failures: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="A subscription is disabled once this many deliveries in a row failed ...",
    )
    webhook_disable_after_s: int = Field(
        default=5 * 86_400,
        ge=0,
        le=30 * 86_400,
        description="... and its deliveries have been failing for at least this long (default 5 days).",
    )
    webhook_secret_overlap_s: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="After a rotation, the old secret signs too for this long (both signatures are sent).",
    )
    webhook_dispatch_concurrency: int = Field(
        default=5,
        ge=2,
        le=1000,
        description="Dispatcher invocations at once (each sends a batch side by side).",
    )
    webhook_log_days: int = Field(
        default=30, ge=1, le=365, description="Days the delivery log keeps an attempt."
    )
    webhook_time_scale: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Tests' accelerated clock, local only: the retry waits last schedule x this.",
    )

    @field_validator("frontend_origin")
    @classmethod
    def _one_origin(cls, value: str) -> str:
        if not ORIGIN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an origin like https://app.example.com (no '*', path or slash)"
            )
        return value

    @model_validator(mode="after")
    def _media_urls_within_the_lease(self) -> EnvConfig:
        if self.media_url_seconds > self.lease_seconds:
            raise ValueError(
                f"media_url_seconds ({self.media_url_seconds}) must not exceed lease_seconds ({self.lease_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _real_clocks_in_the_cloud(self) -> EnvConfig:
        if self.webhook_time_scale != 1 and self.name != "local":
            raise ValueError("webhook_time_scale is for the local environment's tests only")
        return self

    @property
    def cors_allowed_origins(self) -> tuple[str, ...]:
        return (self.frontend_origin,)


ENVIRONMENTS: dict[str, EnvConfig] = {
    "local": EnvConfig(
        name="local",
        account="123456789012",
        retain_data=False,
        audit_ttl_days=30,
        frontend_origin="http://127.0.0.1:8000",  # the local gateway serves the frontend too
        # moto's latency grows with table size (it is not AWS's): the gateway's 29 s timeout bounds requests
        api_call_deadline_s=0,
    ),
    # Where each environment's web app is served from; set these to your own domains before deploying
    # (.example never resolves, so an unset one fails closed: browsers on other origins are refused).
    "dev": EnvConfig(
        name="dev",
        retain_data=False,
        audit_ttl_days=30,
        log_retention_days=14,
        frontend_origin="https://dev.serval.example",
    ),
    "staging": EnvConfig(
        name="staging", retain_data=True, audit_ttl_days=365, frontend_origin="https://staging.serval.example"
    ),
    "prod": EnvConfig(
        name="prod",
        frontend_origin="https://serval.example",
        retain_data=True,
        deletion_protection=True,
        audit_ttl_days=0,
        log_retention_days=365,
        cognito_advanced_security=True,
    ),
}


def load(name: str) -> EnvConfig:
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise SystemExit(f"unknown environment {name!r}; choose one of: {known}") from None
