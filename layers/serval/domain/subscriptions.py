"""Webhook subscriptions and their delivery log: the API's models and the rules on them (no AWS).

A subscription belongs to a project (its managers manage it) or to the organisation (admins),
and receives the events of its scope (an organisation subscription: every project's) whose type
its filter names (an empty filter: every type). Its secret is shown once, at creation and at
rotation, and never again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from serval.domain import events, webhooks

MAX_SUBSCRIPTIONS_PER_SCOPE = 20  # each event fans out to at most this many per scope
MAX_REPLAY_EVENTS = 1000  # events one replay request re-sends; a wider range continues from `next_from`


class Scope(StrEnum):
    PROJECT = "project"
    ORG = "org"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by a user: events are not delivered (each is logged as skipped: replayable)
    DISABLED = "disabled"  # by Serval: a 410, or failures past the limit; resume enables it again


def _known_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - events.EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event types {unknown}; see docs/events.md")
    return sorted(set(types))


EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=64, description="Event types to receive; empty: every type."),
    AfterValidator(_known_types),
]
Url = Annotated[str, Field(min_length=8, max_length=2048, description="HTTPS endpoint.")]
Description = Annotated[str, Field(max_length=500)]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    description: Description = ""
    event_types: EventTypes = Field(default_factory=list)


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None


class Subscription(BaseModel):
    """A subscription as the API shows it: never its secrets."""

    webhook_id: str
    scope: Scope
    project_id: str | None = Field(description="The project; null for an organisation-wide subscription.")
    url: str
    description: str
    event_types: list[str]
    status: SubscriptionStatus
    disabled_reason: str | None = Field(description="Why Serval disabled it (a 410, or repeated failures).")
    consecutive_failures: int = Field(description="Failed attempts since the last delivered one.")
    failing_since: str | None = Field(description="When the current run of failures began.")
    previous_secret_expires_at: str | None = Field(
        description="Until then the secret before the last rotation signs too (both signatures are sent)."
    )
    created_by: str
    created_at: str
    updated_at: str
    version: int


class SubscriptionCreated(Subscription):
    secret: str = Field(description="The signing secret (whsec_…). Shown now and never again: store it.")


class SecretRotated(BaseModel):
    webhook_id: str
    secret: str = Field(description="The new signing secret. Shown now and never again.")
    previous_secret_expires_at: str | None = Field(
        description="The old secret signs too until then; null when the overlap is 0."
    )


class DeliveryOutcome(StrEnum):
    DELIVERED = webhooks.Outcome.DELIVERED.value
    GONE = webhooks.Outcome.GONE.value
    FAILED = webhooks.Outcome.FAILED.value
    REFUSED = "refused"  # the URL's address is not allowed (SSRF): not sent
    SKIPPED = "skipped"  # the subscription was paused or disabled: not sent (replayable)


class Delivery(BaseModel):
    """One attempt in the delivery log."""

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int = Field(description="1 for the first attempt; counts on through retries and replays.")
    attempted_at: str
    outcome: DeliveryOutcome
    status: int | None = Field(description="The response's HTTP status; null without a response.")
    latency_ms: int
    response_excerpt: str = Field(description="The first 1 KiB of the response body.")
    error: str | None = Field(description="A network error, the timeout or the SSRF refusal.")
    delay_s: float | None = Field(description="The retry wait (schedule + jitter) before this attempt.")
    replay: bool = Field(description="A replay requested through the API.")
    next_attempt_at: str | None = Field(description="When the next retry is due; null when none follows.")


class TestResult(BaseModel):
    event_id: str
    delivery: Delivery


class ReplayRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: str = Field(alias="from", min_length=10, max_length=40, description="ISO-8601 UTC, inclusive.")
    to: str = Field(min_length=10, max_length=40, description="ISO-8601 UTC, exclusive.")


class ReplayResult(BaseModel):
    queued: int = Field(description="Events queued for delivery again.")
    next_from: str | None = Field(
        description=f"Set when the range held more than {MAX_REPLAY_EVENTS} events: replay again from here."
    )


def matches(event_types: list[str], event_type: str) -> bool:
    return not event_types or event_type in event_types
