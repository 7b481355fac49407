"""The error answers of each operation in the OpenAPI document, all with the error envelope.

Powertools documents the success status and a 422 (with its own validation schema, which the
API never sends). :func:`document_errors` gives every operation the statuses it can answer,
each with the envelope ``{"error": {"code", "message", "details"}}`` the handler and the gateway
send, so clients and fuzzers can check them:

| status | when | operations |
|---|---|---|
| 400 | the body is not JSON, or is nested too deep | those with a body |
| 401 | no valid token; a disabled user | those with security |
| 403 | the caller's role does not allow the action | those with security |
| 404 | a path id that does not exist or the caller may not see | those with path parameters |
| 409 | a state that does not allow the change, a reused Idempotency-Key | those that change state |
| 413 | a body over 6 MB (10 MB at the gateway) | those with a body |
| 415 | a body whose Content-Type is not JSON | those with a body |
| 422 | a parameter or body that fails validation | those with parameters or a body |
| 429 | throttling, at the gateway or in DynamoDB | all |
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

ENVELOPE = "ErrorEnvelope"
_REF = "#/components/schemas/{model}"
_CHANGES = {"post", "put", "patch", "delete"}
_METHODS = _CHANGES | {"get", "head", "options"}

_DESCRIPTIONS = {
    400: "The body is not JSON (`malformed_json`) or is nested too deep (`json_too_deep`).",
    401: "No valid token (`unauthorized`), or the user is disabled (`user_disabled`).",
    403: "The caller may not perform this action (`forbidden`, `self_grant`).",
    404: "Not found, or not visible to the caller (`not_found` or a specific code).",
    409: "The current state does not allow this (`conflict` or a specific code).",
    413: "The request body is too large (`payload_too_large`).",
    415: "The body's Content-Type is not JSON (`unsupported_media_type`).",
    422: "A parameter or the body is invalid (`validation_failed` or a specific code).",
    429: "Too many requests (`throttled`); retry with backoff.",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="A human-readable explanation.")
    details: Any = Field(
        default=None, description="What the code concerns; a list holds at most 50 problems."
    )


class ErrorEnvelope(BaseModel):
    """Every error answer, from the API and from the gateway in front of it."""

    error: ErrorBody


def _statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    has_body = "requestBody" in operation
    secured = bool(operation.get("security"))
    wanted = {HTTPStatus.TOO_MANY_REQUESTS.value}
    if has_body:
        wanted |= {400, 413, 415, 422}
    if operation.get("parameters"):
        wanted.add(422)
    if secured:
        wanted |= {401, 403}
    if "{" in path:
        wanted.add(404)
    if method in _CHANGES:
        wanted.add(409)
    return sorted(wanted)


def _envelope_response(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=ENVELOPE)}}},
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document as a dict) with each operation's error answers."""
    out = copy.deepcopy(schema)
    for path, item in out.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop(str(HTTPStatus.UNPROCESSABLE_ENTITY.value), None)  # Powertools' own schema
            for status in _statuses(method, path, operation):
                responses[str(status)] = _envelope_response(status)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for unsent in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unsent, None)  # Powertools' error shapes: the API answers with the envelope
    envelope = ErrorEnvelope.model_json_schema(ref_template=_REF)
    schemas.update(envelope.pop("$defs", {}))
    schemas[ENVELOPE] = envelope
    out["components"]["schemas"] = dict(sorted(schemas.items()))
    return out
