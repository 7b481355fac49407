"""Per-environment configuration, validated with pydantic.

``cdk deploy -c env=NAME`` picks one of these; the local stack uses ``local``.
Environments differ only in these values, never in code paths.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EnvName = Literal["local", "dev", "staging", "prod"]


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
    api_rate_limit: int = 200
    api_burst_limit: int = 400
    cognito_advanced_security: bool = False
    cognito_self_sign_up: bool = False
    cors_allowed_origins: tuple[str, ...] = ("*",)
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


ENVIRONMENTS: dict[str, EnvConfig] = {
    "local": EnvConfig(
        name="local",
        account="123456789012",
        retain_data=False,
        audit_ttl_days=30,
        cors_allowed_origins=("http://127.0.0.1:8000", "http://localhost:8000"),
    ),
    "dev": EnvConfig(name="dev", retain_data=False, audit_ttl_days=30, log_retention_days=14),
    "staging": EnvConfig(name="staging", retain_data=True, audit_ttl_days=365),
    "prod": EnvConfig(
        name="prod",
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
