"""The local API Gateway: Cognito authorizer, proxy event shape, proxy response, frontend files."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from moto.utilities.utils import load_resource

from infra.local.activity import ApiRequest
from infra.local.gateway import LocalApiGateway
from infra.local.resources import LocalResources
from infra.spec import ServalSpec
from tests.integration.local.helpers import create_function
from tests.ports import free_port

PASSWORD = "Serval-Gateway-2026!"
JAVA_DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}$")


@dataclass(frozen=True)
class Http:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> Http:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Http(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Http(error.code, error.headers, error.read())


def add_user(pool_id: str, email: str, groups: list[str]) -> None:
    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=PASSWORD, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)


def sign_in(client_id: str, email: str) -> dict[str, str]:
    result = boto3.client("cognito-idp").initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )
    return {k: str(v) for k, v in result["AuthenticationResult"].items()}


def signed_token(claims: dict[str, Any], key: RSAKey) -> str:
    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


def moto_signing_key() -> RSAKey:
    return RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


@dataclass(frozen=True)
class Setup:
    gateway: LocalApiGateway
    resources: LocalResources
    tokens: dict[str, str]
    reported: list[ApiRequest]

    @property
    def url(self) -> str:
        return self.gateway.url

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.tokens['IdToken']}"}


@pytest.fixture(scope="module")
def setup(
    resources: LocalResources, spec: ServalSpec, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """Given the spec's resources, a user in two groups, a test API function and a gateway in front."""
    add_user(resources.user_pool_id, "lead@serval.local", ["admin", "reviewer"])
    tokens = sign_in(resources.user_pool_client_id, "lead@serval.local")
    create_function("gw-api", "api_echo", timeout=10)
    static = tmp_path_factory.mktemp("frontend")
    (static / "index.html").write_text("<html>serval</html>")
    (static / "app.js").write_text("console.log('serval')")
    reported: list[ApiRequest] = []
    gateway = LocalApiGateway(
        spec.api,
        resources,
        function_name="gw-api",
        allowed_origins=spec.config.cors_allowed_origins,
        port=free_port(),
        static_root=Path(static),
        report=reported.append,
    )
    gateway.start()
    yield Setup(gateway, resources, tokens, reported)
    gateway.stop()


def assert_envelope(response: Http, code: str) -> None:
    """API Gateway's own answers carry the API's error envelope (its gateway responses)."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def assert_unauthorized(response: Http) -> None:
    assert response.status == 401
    assert_envelope(response, "unauthorized")
    assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"


def test_a_request_without_a_token_is_refused_before_the_function(setup: Setup) -> None:
    # When a protected route is called without a token / with a malformed one
    # Then API Gateway's 401 comes back
    assert_unauthorized(request(f"{setup.url}/projects"))
    assert_unauthorized(request(f"{setup.url}/projects", headers={"Authorization": "Bearer not-a-jwt"}))


def test_expired_forged_foreign_and_access_tokens_are_refused(setup: Setup) -> None:
    # Given tokens that are expired, signed by another key, issued by another pool or client, or access tokens
    resources = setup.resources
    now = int(time.time())
    valid_claims = {
        "iss": resources.issuer,
        "aud": resources.user_pool_client_id,
        "token_use": "id",
        "sub": "someone",
        "iat": now - 60,
        "exp": now + 3600,
    }
    expired = signed_token(valid_claims | {"iat": now - 7200, "exp": now - 3600}, moto_signing_key())
    forged = signed_token(valid_claims, RSAKey.generate_key(2048))
    cognito = boto3.client("cognito-idp")
    other_pool = cognito.create_user_pool(PoolName="gw-other-pool")["UserPool"]["Id"]
    other_pool_client = cognito.create_user_pool_client(
        UserPoolId=other_pool, ClientName="c", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    add_user(other_pool, "stranger@serval.local", [])
    other_client = cognito.create_user_pool_client(
        UserPoolId=resources.user_pool_id,
        ClientName="gw-other-client",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
    )["UserPoolClient"]["ClientId"]

    # When each is sent
    for token in (
        expired,
        forged,
        sign_in(other_pool_client, "stranger@serval.local")["IdToken"],
        sign_in(other_client, "lead@serval.local")["IdToken"],
        setup.tokens["AccessToken"],  # the API has no authorization scopes: id tokens only
    ):
        # Then each is refused
        assert_unauthorized(request(f"{setup.url}/projects", headers=setup.bearer(token)))

    # And a token the authorizer must accept, signed the same way, is accepted (the checks are not vacuous)
    accepted = request(
        f"{setup.url}/projects", headers=setup.bearer(signed_token(valid_claims, moto_signing_key()))
    )
    assert accepted.status == 200


def test_a_valid_id_token_reaches_the_function_with_the_production_event(setup: Setup) -> None:
    # When the user calls a protected route with a query string, a repeated parameter and a body
    response = request(
        f"{setup.url}/projects/p-1/tasks?status=new&tag=a&tag=b",
        method="POST",
        headers=setup.bearer() | {"Content-Type": "application/json", "User-Agent": "serval-test"},
        body=b'{"name": "x"}',
    )

    # Then the function's proxy response is the HTTP response
    assert response.status == 200
    assert response.headers["X-Echo"] == "1"
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["x-amzn-RequestId"]
    event = response.json()
    # And the event has API Gateway REST's proxy shape
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/projects/p-1/tasks"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"proxy": "projects/p-1/tasks"}
    assert event["queryStringParameters"] == {"status": "new", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"status": ["new"], "tag": ["a", "b"]}
    assert event["headers"]["User-Agent"] == "serval-test"
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert event["body"] == '{"name": "x"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "v1"
    assert context["path"] == "/v1/projects/p-1/tasks"
    assert context["resourcePath"] == "/{proxy+}"
    assert context["httpMethod"] == "POST"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "serval-test"
    assert isinstance(context["requestTimeEpoch"], int)
    assert context["requestId"] == response.headers["x-amzn-RequestId"]
    # And the claims are rendered as API Gateway REST renders them: all strings
    claims = context["authorizer"]["claims"]
    assert all(isinstance(value, str) for value in claims.values())
    assert set(claims["cognito:groups"].split(",")) == {"admin", "reviewer"}
    assert claims["email"] == "lead@serval.local"
    assert claims["token_use"] == "id"
    assert claims["aud"] == setup.resources.user_pool_client_id
    assert claims["iss"] == setup.resources.issuer
    assert JAVA_DATE.match(claims["exp"]) and JAVA_DATE.match(claims["iat"])
    assert claims["auth_time"].isdigit()


def test_public_routes_need_no_token_and_take_only_their_method(setup: Setup) -> None:
    # When the health route is called without a token
    health = request(f"{setup.url}/health")
    # Then it reaches the function on its own resource, without an authorizer context
    assert health.status == 200
    event = health.json()
    assert event["resource"] == "/health"
    assert event["pathParameters"] is None
    assert "authorizer" not in event["requestContext"]
    # And another method on that resource is API Gateway's 403
    wrong_method = request(f"{setup.url}/health", method="POST", headers=setup.bearer())
    assert wrong_method.status == 403
    assert_envelope(wrong_method, "forbidden")


def test_function_errors_and_malformed_responses_are_502(setup: Setup) -> None:
    # When the function raises, or answers without a status code
    crashed = request(f"{setup.url}/projects?crash=1", headers=setup.bearer())
    malformed = request(f"{setup.url}/projects?malformed=1", headers=setup.bearer())
    # Then API Gateway's 502 comes back
    for response in (crashed, malformed):
        assert response.status == 502
        assert_envelope(response, "internal_error")


def test_a_request_over_10_mb_is_refused_with_the_envelope(setup: Setup) -> None:
    # When a body over API Gateway's 10 MB limit is sent
    response = request(
        f"{setup.url}/projects", method="POST", headers=setup.bearer(), body=b"x" * (10 * 1024 * 1024 + 1)
    )
    # Then API Gateway's 413 comes back, with the error envelope
    assert response.status == 413
    assert_envelope(response, "payload_too_large")


def test_the_frontend_is_served_for_pages_and_files(setup: Setup) -> None:
    # When the browser asks for the root, a client-side route, a file, a missing file, and reloads an API-like page
    root = request(f"{setup.url}/")
    page = request(f"{setup.url}/settings/profile", headers={"Accept": "text/html"})
    script = request(f"{setup.url}/app.js")
    missing = request(f"{setup.url}/missing.js")
    reload = request(
        f"{setup.url}/projects/p-1", headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    )
    # Then pages get index.html, files themselves, and a missing file 404
    assert root.status == 200 and b"serval" in root.body
    assert page.status == 200 and page.body == root.body
    assert script.status == 200 and b"console.log" in script.body
    assert missing.status == 404
    assert reload.status == 200 and reload.body == root.body


def test_cors_preflight_is_answered_for_the_configured_origins(setup: Setup) -> None:
    # When a browser preflights an API call from the local frontend's origin
    response = request(
        f"{setup.url}/projects",
        method="OPTIONS",
        headers={"Origin": "http://127.0.0.1:8000", "Access-Control-Request-Method": "POST"},
    )
    # Then the gateway answers it without a token, as default_cors_preflight_options does
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_the_gateways_own_refusals_carry_cors_headers_for_the_frontend_origin(setup: Setup) -> None:
    # Given requests from the local frontend's origin that the gateway itself refuses
    frontend = {"Origin": "http://127.0.0.1:8000"}
    refusals = [
        request(f"{setup.url}/projects", headers=frontend),  # no token: 401
        request(f"{setup.url}/health", method="POST", headers=frontend),  # no such method: 403
        request(
            f"{setup.url}/projects?crash=1", headers=setup.bearer() | frontend
        ),  # the function failed: 502
    ]
    # Then the browser can read each refusal, as with API Gateway's gateway responses
    assert [r.status for r in refusals] == [401, 403, 502]
    for response in refusals:
        assert response.headers.get("Access-Control-Allow-Origin") == "http://127.0.0.1:8000"
    # And a refusal for another origin carries none
    foreign = request(f"{setup.url}/projects", headers={"Origin": "https://evil.example"})
    assert foreign.status == 401 and "Access-Control-Allow-Origin" not in foreign.headers


def test_every_api_request_is_reported_with_its_status_and_caller_and_pages_are_not(setup: Setup) -> None:
    # Given the requests reported so far
    setup.reported.clear()
    # When the user calls the API, someone calls it without a token, and a page is loaded
    assert request(f"{setup.url}/projects/p-1/tasks?limit=5", headers=setup.bearer()).status == 200
    assert request(f"{setup.url}/projects").status == 401
    assert request(f"{setup.url}/app.js").status == 200

    # Then each API request was reported once, with its path, status and caller (the console's line)
    seen = [(r.method, r.path, r.status, r.who) for r in setup.reported]
    assert seen == [
        ("GET", "/projects/p-1/tasks?limit=5", 200, "lead@serval.local"),
        ("GET", "/projects", 401, None),
    ]
    assert all(r.elapsed_ms >= 0 for r in setup.reported)
