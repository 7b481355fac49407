"""The local OIDC server and config.json, over HTTP through the real local gateway.

A browser's login (authorization code + PKCE, as oidc-client-ts does it) and the attacks
the server must refuse: a wrong password, a wrong or missing PKCE verifier, a reused,
expired or foreign code, an unregistered redirect or logout URL, concurrent exchanges.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from infra.local.gateway import LocalApiGateway
from infra.local.oidc import CODE_TTL_S
from infra.local.resources import LocalResources
from infra.spec import ServalSpec
from tests.integration.local.helpers import create_function
from tests.integration.local.test_local_gateway import PASSWORD, add_user
from tests.ports import free_port

EMAIL = "oidc-annotator@serval.local"


@dataclass(frozen=True)
class Oidc:
    gateway: LocalApiGateway
    resources: LocalResources
    spec: ServalSpec
    config: dict[str, Any]
    discovery: dict[str, Any]

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def client_id(self) -> str:
        return str(self.config["oidc"]["clientId"])

    @property
    def callback(self) -> str:
        """The registered callback: the configured frontend origin + the redirect path."""
        return self.spec.config.frontend_origin + self.config["oidc"]["redirectPath"]


@pytest.fixture(scope="module")
def oidc(
    resources: LocalResources, spec: ServalSpec, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Oidc]:
    """Given the spec's resources, an annotator, a test API function and the gateway with the whole spec."""
    add_user(resources.user_pool_id, EMAIL, ["annotator"])
    create_function("oidc-api", "api_echo", timeout=10)
    static = tmp_path_factory.mktemp("frontend")
    (static / "index.html").write_text("<html>serval</html>")
    gateway = LocalApiGateway(
        spec.api,
        resources,
        function_name="oidc-api",
        allowed_origins=spec.config.cors_allowed_origins,
        port=free_port(),
        static_root=Path(static),
        spec=spec,
    )
    gateway.start()
    config = requests.get(f"{gateway.url}/config.json", timeout=10).json()
    discovery = requests.get(config["oidc"]["metadataUrl"], timeout=10).json()
    yield Oidc(gateway, resources, spec, config, discovery)
    gateway.stop()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(oidc: Oidc, challenge: str, state: str = "st-1", **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": oidc.client_id,
        "redirect_uri": oidc.callback,
        "scope": oidc.config["oidc"]["scope"],
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | extra


def sign_in(oidc: Oidc, params: dict[str, str], password: str = PASSWORD) -> requests.Response:
    """The login form posted as a browser posts it (its hidden fields plus the credentials)."""
    return requests.post(
        oidc.discovery["authorization_endpoint"],
        data=params | {"email": EMAIL, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def login_code(
    oidc: Oidc, verifier_challenge: tuple[str, str] | None = None, state: str = "st-1"
) -> tuple[str, str]:
    """(code, verifier) of a successful login."""
    verifier, challenge = verifier_challenge or pkce_pair()
    answer = sign_in(oidc, authorize_params(oidc, challenge, state))
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return query["code"][0], verifier


def exchange(oidc: Oidc, code: str, verifier: str, **override: str) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "client_id": oidc.client_id,
        "code": code,
        "redirect_uri": oidc.callback,
        "code_verifier": verifier,
    } | override
    return requests.post(oidc.discovery["token_endpoint"], data=data, timeout=10)


def refresh(oidc: Oidc, refresh_token: str) -> requests.Response:
    data = {"grant_type": "refresh_token", "client_id": oidc.client_id, "refresh_token": refresh_token}
    return requests.post(oidc.discovery["token_endpoint"], data=data, timeout=10)


def assert_oauth_error(answer: requests.Response, error: str, status: int = 400) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error and body["error_description"]
    assert answer.headers["Cache-Control"] == "no-store"


def claims(oidc: Oidc, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(oidc.discovery["jwks_uri"], timeout=10).json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


def test_config_json_and_discovery_describe_the_pool_and_the_gateway(oidc: Oidc) -> None:
    # When the web app reads its runtime configuration and the discovery document
    config, discovery = oidc.config, oidc.discovery
    # Then config.json has the contract's shape, with the gateway's API and the pool's client
    assert config == {
        "environment": "local",
        "apiUrl": oidc.url,
        "region": oidc.resources.region,
        "oidc": {
            "authority": oidc.resources.issuer,
            "metadataUrl": f"{oidc.url}/oauth2/.well-known/openid-configuration",
            "clientId": oidc.resources.user_pool_client_id,
            "scope": "openid email profile",
            "redirectPath": "/auth/callback",
            "endSessionEndpoint": f"{oidc.url}/oauth2/logout",
        },
    }
    # And the discovery document's issuer is the authority, with the code grant and S256 only
    assert discovery["issuer"] == config["oidc"]["authority"]
    assert discovery["authorization_endpoint"] == f"{oidc.url}/oauth2/authorize"
    assert discovery["token_endpoint"] == f"{oidc.url}/oauth2/token"
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["response_types_supported"] == ["code"]
    assert "end_session_endpoint" not in discovery  # as Cognito's: logout is Cognito's own format


def test_a_browser_login_yields_id_tokens_the_api_accepts_and_state_round_trips(oidc: Oidc) -> None:
    # Given the login page of a valid authorize request
    verifier, challenge = pkce_pair()
    params = authorize_params(oidc, challenge, state="opaque-state-42")
    page = requests.get(oidc.discovery["authorization_endpoint"], params=params, timeout=10)
    assert page.status_code == 200
    assert (
        'name="password"' in page.text and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )

    # When the user signs in, and the app exchanges the code with its verifier
    answer = sign_in(oidc, params)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    tokens = exchange(oidc, query["code"][0], verifier)

    # Then the redirect goes to the callback with the state unchanged
    assert f"{location.scheme}://{location.netloc}{location.path}" == oidc.callback
    assert query["state"] == ["opaque-state-42"]
    # And the token answer is Cognito's, with an ID token for this client from this pool
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert {"id_token", "access_token", "refresh_token", "expires_in", "token_type"} <= set(body)
    id_claims = claims(oidc, body["id_token"])
    assert id_claims["iss"] == oidc.config["oidc"]["authority"]
    assert id_claims["aud"] == oidc.client_id
    assert id_claims["email"] == EMAIL and id_claims["cognito:groups"] == ["annotator"]
    # And the API takes it as the bearer token
    api = requests.get(
        f"{oidc.url}/projects", headers={"Authorization": f"Bearer {body['id_token']}"}, timeout=30
    )
    assert api.status_code == 200
    # And userinfo answers for the access token
    info = requests.get(
        oidc.discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert info.status_code == 200 and info.json()["email"] == EMAIL


def test_a_wrong_password_shows_the_page_again_with_an_error_and_no_code(oidc: Oidc) -> None:
    # When the user signs in with a wrong password
    _, challenge = pkce_pair()
    answer = sign_in(oidc, authorize_params(oidc, challenge), password="Wrong-Password-1!")
    # Then the login page comes back with a clear error, and no redirect carries a code
    assert answer.status_code == 401
    assert "Location" not in answer.headers
    assert "Incorrect email or password." in answer.text
    assert 'name="password"' in answer.text


def test_the_login_page_escapes_what_the_request_carries(oidc: Oidc) -> None:
    # Given an authorize request whose state is markup
    _, challenge = pkce_pair()
    hostile = '"><script>alert(1)</script>'
    # When the login page is shown
    page = requests.get(
        oidc.discovery["authorization_endpoint"],
        params=authorize_params(oidc, challenge, state=hostile),
        timeout=10,
    )
    # Then the state is in the form, escaped, never as markup
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_wrong_or_missing_pkce_verifier_is_refused_and_burns_the_code(oidc: Oidc) -> None:
    # Given a code, and a verifier that is not the one of its challenge
    code, verifier = login_code(oidc)
    other_verifier, _ = pkce_pair()
    # When the code is exchanged without a verifier, then with the wrong one
    missing = exchange(oidc, code, "")
    wrong = exchange(oidc, code, other_verifier)
    # Then both are refused, and the code cannot be used afterwards even with the right verifier
    assert_oauth_error(missing, "invalid_request")
    assert_oauth_error(wrong, "invalid_grant")
    assert "code_verifier" in wrong.json()["error_description"]
    assert_oauth_error(exchange(oidc, code, verifier), "invalid_grant")


def test_a_reused_code_is_refused_and_signs_its_first_tokens_out(oidc: Oidc) -> None:
    # Given a code that was exchanged once
    code, verifier = login_code(oidc)
    first = exchange(oidc, code, verifier)
    assert first.status_code == 200
    assert refresh(oidc, first.json()["refresh_token"]).status_code == 200
    # When it is presented again
    again = exchange(oidc, code, verifier)
    # Then it is refused, and the refresh token of the first exchange no longer works
    assert_oauth_error(again, "invalid_grant")
    assert "already used" in again.json()["error_description"]
    assert_oauth_error(refresh(oidc, first.json()["refresh_token"]), "invalid_grant")


def test_concurrent_exchanges_of_one_code_give_tokens_once(oidc: Oidc) -> None:
    # Given one code and eight threads ready to exchange it at once
    code, verifier = login_code(oidc)
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        status = exchange(oidc, code, verifier).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=race) for _ in range(8)]
    # When they all exchange it
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one gets tokens
    assert sorted(statuses) == [200] + [400] * 7


def test_an_expired_code_is_refused(oidc: Oidc) -> None:
    # Given a code, and a clock past its five minutes
    code, verifier = login_code(oidc)
    server = oidc.gateway.oidc
    assert server is not None
    issued_clock = server.clock
    server.clock = lambda: time.time() + CODE_TTL_S + 1
    try:
        # When it is exchanged
        answer = exchange(oidc, code, verifier)
    finally:
        server.clock = issued_clock
    # Then it is refused
    assert_oauth_error(answer, "invalid_grant")


def test_a_code_is_bound_to_its_redirect_uri_and_client(oidc: Oidc) -> None:
    # Given another OAuth client of the same pool with the same callback
    other = boto3.client("cognito-idp").create_user_pool_client(
        UserPoolId=oidc.resources.user_pool_id,
        ClientName="oidc-other-client",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[oidc.callback],
    )["UserPoolClient"]["ClientId"]
    # When codes are exchanged with another redirect_uri, another client, an unknown client
    code, verifier = login_code(oidc)
    wrong_redirect = exchange(oidc, code, verifier, redirect_uri=f"{oidc.url}/elsewhere")
    code, verifier = login_code(oidc)
    wrong_client = exchange(oidc, code, verifier, client_id=other)
    code, verifier = login_code(oidc)
    unknown_client = exchange(oidc, code, verifier, client_id="no-such-client")
    with_secret = exchange(oidc, code, verifier, client_secret="s3cret")
    # Then each is refused with the OAuth error for it
    assert_oauth_error(wrong_redirect, "invalid_grant")
    assert_oauth_error(wrong_client, "invalid_grant")
    assert_oauth_error(unknown_client, "invalid_client", status=401)
    assert_oauth_error(with_secret, "invalid_client", status=401)
    assert_oauth_error(
        requests.post(
            oidc.discovery["token_endpoint"], data={"grant_type": "password", "client_id": oidc.client_id}
        ),
        "unsupported_grant_type",
    )


def test_bad_authorize_requests_never_redirect_to_unregistered_uris(oidc: Oidc) -> None:
    _, challenge = pkce_pair()
    endpoint = oidc.discovery["authorization_endpoint"]

    def get(**override: str) -> requests.Response:
        return requests.get(
            endpoint, params=authorize_params(oidc, challenge) | override, allow_redirects=False, timeout=10
        )

    # When the redirect URI or the client is not registered
    for answer in (get(redirect_uri="https://evil.example/auth/callback"), get(client_id="no-such-client")):
        # Then an error page is shown and nothing is redirected
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert "Sign-in error" in answer.text
    # When the request is for a registered callback but without PKCE S256, or with another response type
    for override, error in (
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid aws.cognito.signin.user.admin"}, "invalid_scope"),
    ):
        answer = get(**override)
        # Then the error goes back to the callback, with the state
        assert answer.status_code == 302
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["error"] == [error] and query["state"] == ["st-1"]


def test_refresh_gives_new_tokens_of_the_same_sign_in_and_bad_ones_are_refused(oidc: Oidc) -> None:
    # Given the tokens of a login
    code, verifier = login_code(oidc)
    first = exchange(oidc, code, verifier).json()
    time.sleep(1.1)  # the refreshed token is signed in a later second than the first
    # When the app refreshes them
    answer = refresh(oidc, first["refresh_token"])
    # Then it gets a new ID token of the same sign-in (oidc-client-ts compares sub and auth_time)
    assert answer.status_code == 200, answer.text
    renewed = answer.json()
    assert "refresh_token" not in renewed  # as Cognito: the refresh token stays the same
    old, new = claims(oidc, first["id_token"]), claims(oidc, renewed["id_token"])
    assert new["sub"] == old["sub"] and new["auth_time"] == old["auth_time"]
    assert new["iat"] > old["iat"]
    api = requests.get(
        f"{oidc.url}/projects", headers={"Authorization": f"Bearer {renewed['id_token']}"}, timeout=30
    )
    assert api.status_code == 200
    # And a made-up refresh token is refused
    assert_oauth_error(refresh(oidc, "not-a-refresh-token"), "invalid_grant")


def test_logout_redirects_only_to_the_clients_logout_urls(oidc: Oidc) -> None:
    endpoint = oidc.config["oidc"]["endSessionEndpoint"]
    registered = oidc.spec.config.frontend_origin + "/"

    def logout(**params: str) -> requests.Response:
        return requests.get(endpoint, params=params, allow_redirects=False, timeout=10)

    # When the app logs out in Cognito's format to its origin
    ok = logout(client_id=oidc.client_id, logout_uri=registered)
    # Then the browser goes there
    assert ok.status_code == 302 and ok.headers["Location"] == registered
    # And an unregistered logout URI or an unknown client gets an error page, no redirect
    for bad in (
        logout(client_id=oidc.client_id, logout_uri="https://evil.example/"),
        logout(client_id="no-such-client", logout_uri=registered),
    ):
        assert bad.status_code == 400 and "Location" not in bad.headers


def test_login_pages_are_not_cached_nor_framed(oidc: Oidc) -> None:
    _, challenge = pkce_pair()
    page = requests.get(
        oidc.discovery["authorization_endpoint"], params=authorize_params(oidc, challenge), timeout=10
    )
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert re.search(r"form-action 'self' http://127\.0\.0\.1:8000", page.headers["Content-Security-Policy"])
