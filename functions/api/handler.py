"""API Lambda: Powertools REST resolver with validation; errors map to HTTP here, once."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.compat import model_json
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, OpenAPI
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from api.cors import EnvironmentCORS, cors_headers
from api.error_responses import document_errors
from api.guard import SECURITY_SCHEME, authorize_matched_route
from api.routes import (
    activity,
    audit,
    chain,
    exports,
    members,
    projects,
    system,
    tasks,
    uploads,
    users,
    webhooks,
)
from api.routes import annotations as annotation_routes
from api.routes import bulk as bulk_routes
from api.routes import quality as quality_routes
from api.routes import queue as queue_routes
from api.telemetry import logger, metrics, tracer
from serval import errors
from serval.domain import json_input
from serval.logic.deadline import invocation_deadline, transient

MAX_BODY_BYTES = 6 * 1024 * 1024 - 1024  # the Lambda synchronous payload limit, less the envelope

MAX_DETAILS = 50  # problems listed in an error's details; the message gives the total
MAX_DETAILS_BYTES = 64 * 1024  # details larger than this (serialized) are summarised


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Request validation that reads bodies as JSON only: the API takes no forms or multipart."""

    def _get_body(self, app: Any) -> dict[str, Any]:
        content_type = app.current_event.headers.get("content-type", "").strip()
        if content_type and not content_type.lower().startswith(content_types.APPLICATION_JSON):
            raise RequestUnsupportedContentType("Unsupported content type", errors=[])
        return super()._get_body(app)


class ServalResolver(APIGatewayRestResolver):
    """Powertools' REST resolver that reads JSON bodies only, and whose OpenAPI document lists
    every operation's error answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._request_validation_middleware = JsonBodyValidation()

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        schema = json.loads(
            model_json(super().get_openapi_schema(**kwargs), by_alias=True, exclude_none=True)
        )
        return OpenAPI.model_validate(document_errors(schema))


cors = EnvironmentCORS()
app = ServalResolver(enable_validation=True, json_body_deserializer=json_input.loads, cors=cors)
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
    webhooks,
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
    errors.BadRequest: HTTPStatus.BAD_REQUEST,
    errors.ValidationFailed: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.NotFound: HTTPStatus.NOT_FOUND,
    errors.Conflict: HTTPStatus.CONFLICT,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    errors.Unauthorized: HTTPStatus.UNAUTHORIZED,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    errors.Throttled: HTTPStatus.TOO_MANY_REQUESTS,
    errors.ImportBusy: HTTPStatus.CONFLICT,
    errors.PoisonRecord: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def _summarised(message: str, details: Any) -> tuple[str, Any]:
    """Details small enough for any answer: the first problems of a long list, and the total."""
    if isinstance(details, list) and len(details) > MAX_DETAILS:
        message = f"{message} ({len(details)} problems; the first {MAX_DETAILS} are listed)"
        details = details[:MAX_DETAILS]
    size = len(json.dumps(details, default=str))
    if size > MAX_DETAILS_BYTES:
        details = {"omitted": f"the details ({size} bytes) are too large to list"}
    return message, details


def error_response(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    message, details = _summarised(message, details)
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=errors.error_body(code, message, details),
    )


def _status_of(exc: errors.ServalError) -> HTTPStatus:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return HTTPStatus.INTERNAL_SERVER_ERROR


@app.exception_handler(errors.ServalError)
def serval_error(exc: errors.ServalError) -> Response[Any]:
    try:
        authorize_matched_route(app)  # an error raised before the guard (reading the body)
    except errors.ServalError as refused:
        exc = refused
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
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, errors.ValidationFailed.code, "the request is invalid", problems
    )


@app.exception_handler(RequestUnsupportedContentType)
def unsupported_content_type(_: RequestUnsupportedContentType) -> Response[Any]:
    content_type = app.current_event.headers.get("content-type", "")
    return serval_error(
        errors.UnsupportedMediaType(
            "send the body as application/json", details={"content_type": content_type[:200]}
        )
    )


@app.not_found
def not_found(_: Exception) -> Response[Any]:
    return error_response(
        HTTPStatus.NOT_FOUND, "route_not_found", "no such route", {"path": app.current_event.path}
    )


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[Any]:
    if transient(exc):  # throttled or unreachable after botocore's retries (pynamodb's reads too)
        logger.warning("AWS was busy or unreachable", reason=str(exc))
        return serval_error(errors.Throttled("the service is busy; retry shortly"))
    logger.exception("unhandled error")
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        errors.ServalError.code,
        "something went wrong on our side",
        {"request_id": app.current_event.request_context.request_id},
    )


@app.get("/openapi.json", tags=["system"], summary="This API's OpenAPI document", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


def openapi_json() -> str:
    return app.get_openapi_json_schema(title="Serval API", version="0.1.0")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        error = errors.error_body(
            errors.PayloadTooLarge.code,
            f"the body is larger than {MAX_BODY_BYTES} bytes; upload large data through /uploads",
            {"bytes": len(body)},
        )
        return {
            "statusCode": HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value,
            "headers": {"Content-Type": content_types.APPLICATION_JSON, **cors_headers(cors, event)},
            "body": json.dumps(error),
            "isBase64Encoded": False,
        }
    with invocation_deadline():
        return app.resolve(event, context)
