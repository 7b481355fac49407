"""The API's own responses carry CORS headers for the environment's frontend origin only, and an
invocation's AWS calls stop at the API's call deadline."""

from __future__ import annotations

import pytest

from serval.adapters import clients, dynamo
from serval.domain.actor import Actor
from serval.errors import Throttled
from tests.integration.api_client import call
from tests.integration.conftest import Aws

FRONTEND = "http://127.0.0.1:8000"  # the local environment's frontend_origin


def test_the_local_api_allows_exactly_the_frontend_origin(aws: Aws) -> None:
    # Given the local spec
    # Then the api function's CORS origin is the environment's frontend origin
    assert aws.spec.config.frontend_origin == FRONTEND
    assert aws.spec.functions["api"].environment["CORS_ALLOW_ORIGIN"] == FRONTEND


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/projects", 200),  # a route's answer
        ("GET", "/projects/p-missing", 404),  # a domain error
        ("POST", "/projects", 422),  # a validation error
        ("GET", "/no-such-route", 404),  # the router's own answer
    ],
)
def test_every_kind_of_answer_carries_cors_headers_for_the_frontend_origin(
    aws: Aws, admin: Actor, method: str, path: str, status: int
) -> None:
    # Given a browser request from the frontend's origin
    # When the API answers it
    response = call(method, path, admin, {} if method == "POST" else None, headers={"Origin": FRONTEND})
    # Then the browser may read the answer, whatever it is, and caches key on the origin
    assert response.status == status, response.body
    assert response.headers.get("Access-Control-Allow-Origin") == FRONTEND
    assert response.headers.get("Vary") == "Origin"


def test_a_too_large_body_is_refused_with_cors_headers(aws: Aws, admin: Actor) -> None:
    # Given a body over the Lambda payload limit, from the frontend's origin
    from api.handler import MAX_BODY_BYTES

    # When the API refuses it before routing
    response = call(
        "POST", "/projects", admin, raw_body="x" * (MAX_BODY_BYTES + 1), headers={"Origin": FRONTEND}
    )
    # Then the refusal is readable by the frontend too
    assert response.status == 413
    assert response.body["error"]["code"] == "payload_too_large"
    assert response.headers.get("Access-Control-Allow-Origin") == FRONTEND


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:8000", None])
def test_other_origins_and_requests_without_origin_get_no_cors_headers(
    aws: Aws, admin: Actor, origin: str | None
) -> None:
    # Given a request from another origin, or from no browser at all
    headers = {"Origin": origin} if origin else {}
    # When the API answers it
    response = call("GET", "/projects", admin, headers=headers)
    # Then it succeeds but carries no CORS header, so a browser on that origin cannot read it
    assert response.status == 200
    assert not {name.lower() for name in response.headers} & {"access-control-allow-origin", "vary"}


def test_no_aws_request_starts_after_the_deadline(aws: Aws) -> None:
    # Given an invocation whose call deadline has passed
    with clients.deadline(0):
        # When boto3 or pynamodb is about to send a request
        # Then it is refused before it is sent, as a retryable Throttled
        with pytest.raises(Throttled):
            clients.dynamodb().list_tables()
        with pytest.raises(Throttled):
            dynamo.tasks().Item.count("PROJECT#p-none")
    # And outside the deadline the same calls go through
    assert aws.spec.tables["tasks"].name in clients.dynamodb().list_tables()["TableNames"]


def test_an_api_request_past_its_deadline_answers_429_not_500(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API with a deadline that is over as soon as the request starts
    monkeypatch.setenv("AWS_CALL_DEADLINE_S", "1e-9")
    # When a route that reads DynamoDB is called
    response = call("GET", "/projects", admin)
    # Then the caller is told to retry, in the error envelope
    assert response.status == 429
    assert response.body["error"]["code"] == "throttled"
    # And without a deadline the same request succeeds
    monkeypatch.setenv("AWS_CALL_DEADLINE_S", "0")
    assert call("GET", "/projects", admin).status == 200
