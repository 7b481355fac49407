"""The local OpenID Connect authorization server: Cognito managed login's endpoints, on moto.

The web app logs in with oidc-client-ts (authorization code + PKCE) against this server
locally and against Cognito's managed login in AWS, with the same code. Tokens are
moto's own (``InitiateAuth``), so the browser holds the ID tokens the gateway's
authorizer verifies, with ``iss`` = the pool's issuer.

Endpoints (all under :data:`PREFIX`, away from the SPA's routes):
- ``GET  /oauth2/.well-known/openid-configuration``: the discovery document. As Cognito's, it
  names no ``end_session_endpoint``: logout is Cognito's ``GET /oauth2/logout?client_id=...&logout_uri=...``
  (the ``endSessionEndpoint`` of ``config.json``).
- ``GET  /oauth2/authorize``: checks the request and shows a login page; ``POST`` signs in
  (``USER_PASSWORD_AUTH``) and redirects to the callback with ``code`` and ``state``.
- ``POST /oauth2/token``: ``authorization_code`` (PKCE S256 required) and ``refresh_token``
  (Cognito's ``REFRESH_TOKEN_AUTH``), public clients only, OAuth error JSON on refusal.
- ``GET  /oauth2/userInfo``: the user's attributes for an access token.
- ``GET  /oauth2/.well-known/jwks.json``: moto's signing keys.
- ``GET  /oauth2/logout``: redirects to ``logout_uri`` if it is one of the client's logout URLs.

What it enforces, as Cognito does: the client must exist with the code grant on; the
``redirect_uri`` and ``logout_uri`` must be exactly one of the client's URLs (an unknown one
gets an error page, never a redirect); scopes must be the client's. Codes are random, live
five minutes at most and are taken once under a lock, so two concurrent exchanges of one
code cannot both succeed; a code presented again also signs its first tokens out
(``GlobalSignOut``: their refresh token stops working), as RFC 6749 4.1.2 advises.

Two local differences: there is no single-sign-on session (every login shows the form),
and ``nonce`` is refused, since moto's ID tokens cannot carry one. When the gateway
listens on another port than the configured frontend origin (tests on free ports), its own
origin's callback and logout URLs are accepted too: the page it serves is on that origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import boto3
from botocore.exceptions import ClientError
from werkzeug.wrappers import Request, Response

from infra.spec import ServalSpec

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

    from infra.local.resources import LocalResources

PREFIX = "/oauth2"
DISCOVERY_PATH = f"{PREFIX}/.well-known/openid-configuration"
JWKS_PATH = f"{PREFIX}/.well-known/jwks.json"
AUTHORIZE_PATH = f"{PREFIX}/authorize"
TOKEN_PATH = f"{PREFIX}/token"
USERINFO_PATH = f"{PREFIX}/userInfo"
LOGOUT_PATH = f"{PREFIX}/logout"

CODE_TTL_S = 300  # an authorization code is good for five minutes at most (Cognito: five)
PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 section 4.1
# What the authorize request carries through the login form.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
LOGIN_FAILED = "Incorrect email or password."
SIGN_IN_REFUSALS = {
    "NotAuthorizedException": LOGIN_FAILED,
    "UserNotFoundException": LOGIN_FAILED,
    "UserNotConfirmedException": "This account is not confirmed yet.",
    "PasswordResetRequiredException": "This account's password must be reset first.",
}


class OAuthError(Exception):
    """An OAuth error response: ``error`` and ``error_description``, with its HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = f'Bearer error="{self.error}"'
        body = {"error": self.error, "error_description": self.description}
        return Response(
            json.dumps(body), status=self.status, headers=headers, content_type="application/json"
        )


@dataclass(frozen=True)
class Client:
    client_id: str
    callback_urls: frozenset[str]
    logout_urls: frozenset[str]
    scopes: frozenset[str]


@dataclass(frozen=True)
class AuthorizeRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str

    def hidden_fields(self) -> dict[str, str]:
        fields = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            fields["state"] = self.state
        return fields


@dataclass(frozen=True)
class Grant:
    """What an authorization code stands for until it is exchanged."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    tokens: dict[str, Any]  # Cognito's AuthenticationResult
    expires_at: float


class RedirectError(Exception):
    """An authorize error that goes back to the (validated) redirect URI, as RFC 6749 4.1.2.1 says."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(description)
        self.redirect_uri, self.state, self.error, self.description = redirect_uri, state, error, description

    def response(self) -> Response:
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return _redirect(self.redirect_uri, params)


def _redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    return Response(status=302, headers={"Location": f"{uri}{separator}{urlencode(params)}"} | NO_STORE)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class LocalOidc:
    """The endpoints above, for the spec's user pool on moto."""

    def __init__(
        self,
        spec: ServalSpec,
        resources: LocalResources,
        *,
        base_url: str,
        jwks: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.resources = resources
        self.base_url = base_url.rstrip("/")
        self._jwks = jwks
        self.clock = clock  # replaceable by tests (code expiry)
        self._cognito: CognitoIdentityProviderClient = boto3.client("cognito-idp")
        self._lock = threading.Lock()
        self._codes: dict[str, Grant] = {}
        self._spent: dict[str, Grant] = {}  # exchanged codes until they would have expired

    # ------------------------------------------------------------------ URLs

    @property
    def issuer(self) -> str:
        return self.resources.issuer

    @property
    def metadata_url(self) -> str:
        return self.base_url + DISCOVERY_PATH

    @property
    def end_session_endpoint(self) -> str:
        return self.base_url + LOGOUT_PATH

    def handles(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.base_url + AUTHORIZE_PATH,
            "token_endpoint": self.base_url + TOKEN_PATH,
            "userinfo_endpoint": self.base_url + USERINFO_PATH,
            "jwks_uri": self.base_url + JWKS_PATH,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(self.spec.auth.oauth_scopes),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, request: Request) -> Response:
        routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", DISCOVERY_PATH): lambda _: self._json(self.discovery()),
            ("GET", JWKS_PATH): lambda _: self._json(self._jwks()),
            ("GET", AUTHORIZE_PATH): self._authorize_page,
            ("POST", AUTHORIZE_PATH): self._sign_in,
            ("POST", TOKEN_PATH): self._token,
            ("GET", USERINFO_PATH): self._userinfo,
            ("GET", LOGOUT_PATH): self._logout,
        }
        method = "GET" if request.method == "HEAD" else request.method
        handler = routes.get((method, request.path))
        if handler is None:
            known = any(path == request.path for _, path in routes)
            return self._json({"error": "not_found"}, status=405 if known else 404)
        try:
            return handler(request)
        except OAuthError as error:
            return error.response()
        except RedirectError as error:
            return error.response()

    @staticmethod
    def _json(body: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    # ------------------------------------------------------------------ clients

    def client(self, client_id: str | None) -> Client | None:
        """The pool's app client with the code grant on, from moto (None: no such client)."""
        if not client_id:
            return None
        try:
            described = self._cognito.describe_user_pool_client(
                UserPoolId=self.resources.user_pool_id, ClientId=client_id
            )["UserPoolClient"]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ResourceNotFoundException", "InvalidParameterException"):
                return None
            raise
        if not described.get("AllowedOAuthFlowsUserPoolClient") or "code" not in described.get(
            "AllowedOAuthFlows", []
        ):
            return None
        auth = self.spec.auth
        own_origin = self.base_url  # the gateway serves the page, whatever port it is on
        return Client(
            client_id=client_id,
            callback_urls=frozenset(described.get("CallbackURLs", [])) | {own_origin + auth.callback_path},
            logout_urls=frozenset(described.get("LogoutURLs", [])) | {own_origin + auth.logout_path},
            scopes=frozenset(described.get("AllowedOAuthScopes", [])),
        )

    # ------------------------------------------------------------------ authorize

    def authorize_request(self, params: Any) -> AuthorizeRequest:
        """The checked authorize request; raises OAuthError (shown as a page) or RedirectError."""
        client = self.client(params.get("client_id"))
        if client is None:
            raise OAuthError("invalid_client", "Unknown client_id, or it does not allow the code grant.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.callback_urls:
            raise OAuthError("invalid_request", "redirect_uri is not one of the client's callback URLs.")
        state = params.get("state")

        def refuse(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, state, error, description)

        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "Only response_type=code is supported.")
        scopes = tuple(params.get("scope", "").split())
        if "openid" not in scopes or not set(scopes) <= client.scopes:
            raise refuse("invalid_scope", f"scope must include openid and be within {sorted(client.scopes)}.")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not PKCE_VALUE.fullmatch(challenge):
            raise refuse(
                "invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256."
            )
        if params.get("nonce"):
            raise refuse("invalid_request", "nonce is not supported by the local server (moto's ID tokens).")
        return AuthorizeRequest(client, redirect_uri, scopes, state, challenge)

    def _authorize_page(self, request: Request) -> Response:
        try:
            checked = self.authorize_request(request.args)
        except OAuthError as error:
            return self._error_page(error.description)
        return self._login_page(checked)

    def _sign_in(self, request: Request) -> Response:
        try:
            checked = self.authorize_request(request.form)
        except OAuthError as error:
            return self._error_page(error.description)
        email = request.form.get("email", "").strip()
        password = request.form.get("password", "")
        if not email or not password:
            return self._login_page(checked, email, "Enter your email and password.", status=400)
        try:
            result = self._cognito.initiate_auth(
                ClientId=checked.client.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            )
        except ClientError as error:
            message = SIGN_IN_REFUSALS.get(error.response["Error"]["Code"])
            if message is None:
                raise
            return self._login_page(checked, email, message, status=401)
        tokens = result.get("AuthenticationResult")
        if not tokens:  # a challenge (a new password, MFA) the local page does not offer
            message = (
                f"This account needs a step the local login does not offer ({result.get('ChallengeName')})."
            )
            return self._login_page(checked, email, message, status=401)
        code = self.issue_code(checked, dict(tokens))
        params = {"code": code} | ({"state": checked.state} if checked.state is not None else {})
        return _redirect(checked.redirect_uri, params)

    def issue_code(self, checked: AuthorizeRequest, tokens: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(32)
        grant = Grant(
            client_id=checked.client.client_id,
            redirect_uri=checked.redirect_uri,
            code_challenge=checked.code_challenge,
            tokens=tokens,
            expires_at=self.clock() + CODE_TTL_S,
        )
        with self._lock:
            self._forget_expired()
            self._codes[code] = grant
        return code

    def _forget_expired(self) -> None:
        now = self.clock()
        for table in (self._codes, self._spent):
            for code in [c for c, g in table.items() if g.expires_at <= now]:
                del table[code]

    # ------------------------------------------------------------------ token

    def _token(self, request: Request) -> Response:
        form = request.form
        if "client_secret" in form or request.authorization is not None:
            raise OAuthError("invalid_client", "The client is public: no client secret.", status=401)
        if self.client(form.get("client_id")) is None:
            raise OAuthError("invalid_client", "Unknown client_id.", status=401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            tokens = self._exchange_code(form)
        elif grant_type == "refresh_token":
            tokens = self._refresh(form)
        else:
            raise OAuthError(
                "unsupported_grant_type", "grant_type must be authorization_code or refresh_token."
            )
        return Response(json.dumps(tokens), status=200, headers=NO_STORE, content_type="application/json")

    def _exchange_code(self, form: Any) -> dict[str, Any]:
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not code or not verifier:
            raise OAuthError("invalid_request", "code and code_verifier are required.")
        with self._lock:  # take the code: one exchange wins, any other finds it spent
            self._forget_expired()
            grant = self._codes.pop(code, None)
            reused = self._spent.get(code) if grant is None else None
            if grant is not None:
                self._spent[code] = grant
        if reused is not None:
            self._sign_out(reused)
            raise OAuthError("invalid_grant", "The authorization code was already used.")
        if grant is None or grant.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "The authorization code is unknown or expired.")
        if grant.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", "The authorization code was issued to another client.")
        if grant.redirect_uri != form.get("redirect_uri"):
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
        if not PKCE_VALUE.fullmatch(verifier) or not hmac.compare_digest(
            pkce_challenge(verifier), grant.code_challenge
        ):
            raise OAuthError("invalid_grant", "The PKCE code_verifier does not match the code_challenge.")
        return self._token_response(grant.tokens)

    def _sign_out(self, grant: Grant) -> None:
        """Revoke what a code's first exchange issued (its refresh token), as for a stolen code."""
        try:
            self._cognito.global_sign_out(AccessToken=grant.tokens["AccessToken"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotAuthorizedException":  # already signed out
                raise

    def _refresh(self, form: Any) -> dict[str, Any]:
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required.")
        try:
            result = self._cognito.initiate_auth(
                ClientId=form["client_id"],
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NotAuthorizedException", "ResourceNotFoundException"):
                raise OAuthError("invalid_grant", "The refresh token is invalid or revoked.") from None
            raise
        return self._token_response(dict(result["AuthenticationResult"]))

    @staticmethod
    def _token_response(tokens: dict[str, Any]) -> dict[str, Any]:
        """Cognito's token endpoint answer (a refresh keeps its refresh token, so it has none)."""
        body = {
            "id_token": tokens["IdToken"],
            "access_token": tokens["AccessToken"],
            "expires_in": int(tokens["ExpiresIn"]),
            "token_type": "Bearer",
        }
        if tokens.get("RefreshToken"):
            body["refresh_token"] = tokens["RefreshToken"]
        return body

    # ------------------------------------------------------------------ userinfo, logout

    def _userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise OAuthError("invalid_token", "An access token is required.", status=401)
        try:
            user = self._cognito.get_user(AccessToken=token.strip())
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NotAuthorizedException", "UserNotFoundException"):
                raise OAuthError(
                    "invalid_token", "The access token is invalid or revoked.", status=401
                ) from None
            raise
        claims: dict[str, Any] = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        if "email_verified" in claims:
            claims["email_verified"] = claims["email_verified"] == "true"
        claims["username"] = user["Username"]
        return Response(json.dumps(claims), headers=NO_STORE, content_type="application/json")

    def _logout(self, request: Request) -> Response:
        client = self.client(request.args.get("client_id"))
        if client is None:
            return self._error_page("Unknown client_id.")
        logout_uri = request.args.get("logout_uri", "")
        if logout_uri not in client.logout_urls:
            return self._error_page("logout_uri is not one of the client's sign-out URLs.")
        return Response(status=302, headers={"Location": logout_uri} | NO_STORE)

    # ------------------------------------------------------------------ pages

    @staticmethod
    def _page(title: str, body: str, status: int, form_action: str = "'none'") -> Response:
        document = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>"
        )
        headers = NO_STORE | {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        return Response(document, status=status, headers=headers, content_type="text/html; charset=utf-8")

    def _error_page(self, message: str) -> Response:
        body = f'<h1>Sign-in error</h1><p role="alert">{html.escape(message)}</p>'
        return self._page("Sign-in error", body, status=400)

    def _login_page(
        self, checked: AuthorizeRequest, email: str = "", error: str | None = None, status: int = 200
    ) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in checked.hidden_fields().items()
        )
        alert = f'<p role="alert" class="error">{html.escape(error)}</p>' if error else ""
        body = (
            "<h1>Sign in to Serval</h1>"
            f"{alert}"
            f'<form method="post" action="{html.escape(AUTHORIZE_PATH)}">{hidden}'
            '<label for="email">Email</label>'
            f'<input id="email" name="email" type="email" autocomplete="username" required value="{html.escape(email)}">'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" required>'
            '<button type="submit">Sign in</button></form>'
        )
        # the form posts here, and its answer redirects to the callback's origin
        action = f"'self' {_origin(checked.redirect_uri)}"
        return self._page("Sign in to Serval", body, status=status, form_action=action)


PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0}"
    "main{max-inline-size:22rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:.5rem}"
    "label,input,button{display:block;inline-size:100%;box-sizing:border-box;margin-block-start:.5rem}"
    "input{padding:.5rem}button{margin-block-start:1rem;padding:.6rem}.error{color:#b91c1c}"
)
