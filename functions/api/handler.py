"""API Lambda: Powertools REST resolver with validation; errors map to HTTP here, once."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from api.cors import EnvironmentCORS, cors_headers
from api.guard import SECURITY_SCHEME, authorize_matched_route
from api.routes import activity, audit, chain, exports, members, projects, system, tasks, uploads, users
from api.routes import annotations as annotation_routes
from api.routes import bulk as bulk_routes
from api.routes import quality as quality_routes
from api.routes import queue as queue_routes
from api.telemetry import logger, metrics
from serval import errors
from serval.adapters import clients

MAX_BODY_BYTES = 6 * 1024 * 1024 - 1024  # the Lambda synchronous payload limit, less the envelope

cors = EnvironmentCORS()
app = APIGatewayRestResolver(enable_validation=True, cors=cors)
for module in (
    system,
    projects,
    members,
    users,
    tasks,
    annotation_routes,
    uploads,
    chain,
    audit,
    activity,
    exports,
    queue_routes,
    bulk_routes,
    quality_routes,
):
    app.include_router(module.router)

app.configure_openapi(
    title="Serval API",
    version="0.1.0",
    summary="Serverless data annotation: projects, tasks, imports and annotations.",
    security_schemes={
        SECURITY_SCHEME: HTTPBearer(
            bearerFormat="JWT", description="A Cognito ID token (the authorizer takes ID tokens)"
        )
    },
)
app.enable_swagger(path="/swagger", title="Serval API")

STATUS: dict[type[errors.ServalError], HTTPStatus] = {
    errors.ValidationFailed: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.Unauthorized: HTTPStatus.UNAUTHORIZED,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.Throttled: HTTPStatus.TOO_MANY_REQUESTS,
    errors.ImportBusy: HTTPStatus.CONFLICT,
    errors.PoisonRecord: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def error_response(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": {"code": code, "message": message, "details": details}},
    )


def _status_of(exc: errors.ServalError) -> HTTPStatus:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


@app.exception_handler(errors.ServalError)
def serval_error(exc: errors.ServalError) -> Response[Any]:
    status = _status_of(exc)
    logger.info("request refused", code=exc.code, status=status.value)
    return error_response(status, exc.code, exc.message, exc.details)


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    try:
        authorize_matched_route(app)
    except errors.ServalError as refused:
        return serval_error(refused)
    problems = [
        {
            "location": [str(p) for p in e.get("loc", ())],
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(
            HTTPStatus.BAD_REQUEST, "malformed_json", "the request body is not valid JSON", problems
        )
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed", "the request is invalid", problems
    )


@app.not_found
def not_found(_: Exception) -> Response[Any]:
    return error_response(
        HTTPStatus.NOT_FOUND, "route_not_found", "no such route", {"path": app.current_event.path}
    )


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "something went wrong on our side",
        {"request_id": app.current_event.request_context.request_id},
    )


@app.get("/openapi.json", tags=["system"], summary="This API's OpenAPI document", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


def openapi_json() -> str:
    return app.get_openapi_json_schema(title="Serval API", version="0.1.0")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        error = {
            "code": "payload_too_large",
            "message": f"the body is larger than {MAX_BODY_BYTES} bytes; upload large data through /uploads",
            "details": {"bytes": len(body)},
        }
        return {
            "statusCode": HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value,
            "headers": {"Content-Type": content_types.APPLICATION_JSON, **cors_headers(cors, event)},
            "body": json.dumps({"error": error}),
            "isBase64Encoded": False,
        }
    with clients.deadline(clients.invocation_deadline_s()):
        return app.resolve(event, context)
