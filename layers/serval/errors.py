"""Named domain exceptions, defined once. The API maps them to HTTP in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ServalError(Exception):
    """Base class. ``code`` is the stable machine-readable error code."""

    code = "internal_error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(ServalError):
    code = "validation_failed"


class ItemTooLarge(ValidationFailed):
    """An item would not fit DynamoDB's item limit, or Serval's limit for its kind (a task)."""

    code = "item_too_large"


class ItemRefused(ValidationFailed):
    """DynamoDB refused a write as invalid (an item or transaction over its limits, say)."""

    code = "item_refused"


class TransactionTooLarge(ValidationFailed):
    """One change would need a transaction over DynamoDB's 4 MB or 100-action limit."""

    code = "transaction_too_large"


class LabelConfigTooLarge(ValidationFailed):
    code = "label_config_too_large"


class AnnotationTooLarge(ValidationFailed):
    code = "annotation_too_large"


class NotFound(ServalError):
    code = "not_found"


class Conflict(ServalError):
    code = "conflict"


class Forbidden(ServalError):
    code = "forbidden"


class Unauthorized(ServalError):
    code = "unauthorized"


class PayloadTooLarge(ServalError):
    code = "payload_too_large"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class AlreadyExists(Conflict):
    code = "already_exists"


class LimitExceeded(Conflict):
    """A scope already holds as many of a thing as Serval allows (webhook subscriptions)."""

    code = "limit_exceeded"


class ImportBusy(ServalError):
    """Another worker holds this import's lease; the message should be retried later."""

    code = "import_busy"


class PoisonRecord(ServalError):
    """A pipeline record that can never succeed; it goes to the DLQ with this reason."""

    code = "poison_record"


class Throttled(ServalError):
    code = "throttled"


class UserDisabled(Unauthorized):
    """The token is valid but its user has been disabled."""

    code = "user_disabled"


class SelfGrant(Forbidden):
    """Nobody changes their own role, groups or account status."""

    code = "self_grant"


def project_not_found(project_id: str) -> NotFound:
    """The one answer for a project that does not exist *and* for one the caller may not see."""
    return NotFound(f"project {project_id} not found", details={"project_id": project_id})


class TaskTokenInvalid(Conflict):
    """The workflow no longer waits on this step: its task token was used, timed out or is unknown."""

    code = "task_token_invalid"


class LeaseNotHeld(Conflict):
    """The caller does not hold this task's lease (never took it, released it, or it expired and moved on)."""

    code = "lease_not_held"


class ProjectArchived(Conflict):
    """The project is archived: it takes no work (leases, submits, reviews, annotations,
    assignments, task changes) until it is restored."""

    code = "project_archived"


class TaskClosed(Conflict):
    """The task's labels are final (approved, exported or archived): no annotation may be added."""

    code = "task_closed"


class BadRequest(ServalError):
    """The request cannot be read at all (as opposed to content that fails validation)."""

    code = "bad_request"


class MalformedJson(BadRequest):
    code = "malformed_json"


class JsonTooDeep(BadRequest):
    """A JSON document nested deeper than the API reads."""

    code = "json_too_deep"


class UnsupportedMediaType(ServalError):
    """A body that is not JSON by its Content-Type."""

    code = "unsupported_media_type"


class NonFiniteNumber(ValidationFailed):
    """NaN or ±Infinity: not JSON, and nothing an export may ship."""

    code = "non_finite_number"


class NumberOutOfRange(ValidationFailed):
    """A number DynamoDB cannot store (more than 38 digits, or beyond 1e±125)."""

    code = "number_out_of_range"


class InvalidCursor(ValidationFailed):
    """A cursor that is malformed or was not made by this listing."""

    code = "invalid_cursor"


class RoleAboveCeiling(ValidationFailed):
    """A project role above what the user's global role allows."""

    code = "role_above_ceiling"


class LastManager(Conflict):
    """The change would leave the project without a manager."""

    code = "last_manager"


class IdempotencyKeyReused(Conflict):
    """An Idempotency-Key sent again with a different request body."""

    code = "idempotency_key_reused"


class UploadNotFound(NotFound):
    """No such multipart upload under this project's prefix."""

    code = "upload_not_found"


class UploadRefused(ValidationFailed):
    """S3 refused to complete a multipart upload (missing or wrong parts, parts too small, ...)."""

    code = "upload_refused"


# ---- API Gateway's own answers ----------------------------------------------------------------
# What API Gateway answers before (or instead of) the api function: the Cognito authorizer's
# refusals, throttling, oversized requests and integration failures. They carry the same envelope
# as the function's errors; the CDK gateway responses and the local gateway both take their
# status, code and message from here. Keys are API Gateway's response types.

GATEWAY_TIMEOUT_CODE = "gateway_timeout"


@dataclass(frozen=True)
class GatewayError:
    status: int
    code: str
    message: str

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


GATEWAY_ERRORS: dict[str, GatewayError] = {
    "UNAUTHORIZED": GatewayError(401, Unauthorized.code, "a valid Cognito token is required"),
    "EXPIRED_TOKEN": GatewayError(401, Unauthorized.code, "the token has expired; sign in again"),
    "ACCESS_DENIED": GatewayError(403, Forbidden.code, "access denied"),
    "MISSING_AUTHENTICATION_TOKEN": GatewayError(403, Forbidden.code, "no such route, or no token"),
    "REQUEST_TOO_LARGE": GatewayError(413, PayloadTooLarge.code, "the request is larger than 10 MB"),
    "THROTTLED": GatewayError(429, Throttled.code, "too many requests; retry with backoff"),
    "QUOTA_EXCEEDED": GatewayError(429, Throttled.code, "the request quota is used up; retry later"),
    "INTEGRATION_TIMEOUT": GatewayError(504, GATEWAY_TIMEOUT_CODE, "the request timed out; retry"),
    # any other 4xx or 5xx keeps API Gateway's own status (GATEWAY_KEEPS_STATUS); these are the
    # statuses the local gateway answers with
    "DEFAULT_4XX": GatewayError(400, BadRequest.code, "the request was refused"),
    "DEFAULT_5XX": GatewayError(502, ServalError.code, "something went wrong on our side"),
}
GATEWAY_KEEPS_STATUS = frozenset({"DEFAULT_4XX", "DEFAULT_5XX"})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error envelope every error answer carries."""
    return {"error": {"code": code, "message": message, "details": details}}
