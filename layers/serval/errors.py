"""Named domain exceptions, defined once. The API maps them to HTTP in one place."""

from __future__ import annotations

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
