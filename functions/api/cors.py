"""CORS headers on the API's responses, for the one origin the environment allows.

API Gateway answers the preflights (``OPTIONS``); a browser then reads a response only if
it carries ``Access-Control-Allow-Origin`` for its origin. The allowed origin is the
function's ``CORS_ALLOW_ORIGIN`` setting, read per call (the resolver is built at import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import CORSConfig

from serval.settings import settings


class EnvironmentCORS(CORSConfig):
    """Powertools' CORS, with the allowed origin taken from the invocation's settings."""

    def __init__(self) -> None:
        super().__init__(allow_origin="", allow_headers=["Idempotency-Key"])

    def allowed_origin(self, extracted_origin: str | None) -> str | None:
        allowed = settings().CORS_ALLOW_ORIGIN
        return extracted_origin if allowed and extracted_origin == allowed else None

    def to_dict(self, origin: str | None) -> dict[str, str]:
        if origin is None or self.allowed_origin(origin) is None:
            return {}
        # The answer depends on the request's Origin, so caches must key on it.
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def cors_headers(cors: EnvironmentCORS, event: Mapping[str, Any]) -> dict[str, str]:
    """The CORS headers for a raw proxy event (for answers built outside the resolver)."""
    headers = event.get("headers") or {}
    origin = next((str(v) for k, v in headers.items() if k.lower() == "origin"), None)
    return cors.to_dict(origin)
