"""Call the api handler in-process with API Gateway REST proxy events (claims already verified).

The e2e tests go through the local gateway with real Cognito JWTs; these tests exercise
the routes, validation and error mapping quickly.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from serval.domain.actor import Actor


@dataclass
class LambdaContextStub:
    function_name: str = "serval-local-api"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:serval-local-api"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


def call(
    method: str,
    url: str,
    actor: Actor | None,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
) -> ApiResponse:
    from api.handler import handler

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    claims = None
    if actor is not None:
        claims = {
            "sub": actor.user_id,
            "cognito:username": actor.username,
            "email": actor.email or f"{actor.username}@serval.local",
            "cognito:groups": ",".join(actor.groups),
            "token_use": "id",
        }
    request_id = str(uuid.uuid4())
    event = {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/local{parts.path}",
            "stage": "local",
            "requestId": request_id,
            # API Gateway takes the identity's user agent from the request's User-Agent header
            "identity": {"sourceIp": "127.0.0.1", "userAgent": (headers or {}).get("User-Agent", "pytest")},
            "authorizer": {"claims": claims} if claims else None,
        },
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }
    result = handler(event, LambdaContextStub(aws_request_id=request_id))
    text = result.get("body") or ""
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    headers = {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items() if values}
    return ApiResponse(result["statusCode"], parsed, headers | (result.get("headers") or {}))
