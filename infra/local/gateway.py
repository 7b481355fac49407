"""The local API Gateway: HTTP in, API Gateway REST (v1) proxy events to the api function, HTTP out.

What AWS does between the client and the api Lambda, it does here:
- the Cognito authorizer (:mod:`infra.local.authorizer`) guards every route but the
  public ones of ``spec.api.public_routes``; a missing or invalid token is a 401
  before the function runs;
- the event has the production shape: ``resource`` (``/{proxy+}``, ``/`` or a
  public route's own resource), ``path``, ``httpMethod``, ``headers`` and
  ``multiValueHeaders``, both query-string forms, ``pathParameters``,
  ``requestContext`` (request id, stage, identity, the rendered claims, ...),
  ``body`` and ``isBase64Encoded``;
- the function is invoked through ``lambda.invoke`` on moto (so through the
  in-process runtime) and its proxy response becomes the HTTP response; an error
  or a malformed response is a 502, a run past the 29 s integration timeout a 504;
- its own answers (401, 403, 413, 502, 504) carry the error envelope of
  :data:`serval.errors.GATEWAY_ERRORS`, as the CDK gateway responses make API Gateway do;
- every API request it answers is reported (``report``: method, path, status, time, the
  caller's email), for the local console's line;
- requests over 10 MB are refused with 413; CORS preflights are answered for the
  configured origins, as ``default_cors_preflight_options`` does, and the gateway's own
  answers carry ``Access-Control-Allow-Origin``, as its gateway responses do.

Locally the API and the frontend share one origin (``http://127.0.0.1:8000``):
paths under ``spec.api.path_prefixes`` go to the API, everything else is served
from ``frontend/dist`` (or ``frontend/``), with ``index.html`` for unknown page
routes. A browser navigation (``Sec-Fetch-Mode: navigate``) to a non-public API
path gets the frontend too, so reloading a client-side route like ``/projects/x``
works; in AWS the two are on different origins and never collide.

Given the whole spec (as the local stack gives it), the gateway also serves the web app's
login, the OIDC endpoints of :mod:`infra.local.oidc` under ``/oauth2/``, and its runtime
configuration at ``spec.frontend.config_path`` (``/config.json``, :func:`infra.spec.web_config`),
which CDK writes into the site bucket in AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from werkzeug.exceptions import NotFound
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from infra.local.activity import ApiRequest
from infra.local.authorizer import CognitoAuthorizer
from infra.local.moto_server import ensure_port_free
from infra.local.oidc import LocalOidc
from infra.local.resources import LocalResources
from infra.spec import ROOT, ApiSpec, ServalSpec, web_config
from infra.web_headers import content_security_policy, page_headers
from serval.errors import GATEWAY_ERRORS

log = logging.getLogger("serval.local.gateway")

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INTEGRATION_TIMEOUT_S = 29
MAX_REQUEST_BYTES = 10 * 1024 * 1024
PROXY_RESOURCE = "/{proxy+}"
CORS_ALLOW_HEADERS = "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,Idempotency-Key"
CORS_ALLOW_METHODS = "OPTIONS,GET,PUT,POST,DELETE,PATCH,HEAD"


def frontend_root(root: Path = ROOT) -> Path | None:
    """``frontend/dist`` when built, else ``frontend/`` if it has an ``index.html``."""
    for candidate in (root / "frontend" / "dist", root / "frontend"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def _gateway_error(response_type: str, headers: dict[str, str]) -> Response:
    """API Gateway's own answer of ``response_type``, with the body its gateway response gives it."""
    error = GATEWAY_ERRORS[response_type]
    return _json_response(error.status, error.body(), headers)


def _last_values(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return (single or None), (multi or None)


@dataclass(frozen=True)
class Route:
    resource: str
    path_parameters: dict[str, str] | None
    public: bool


class ApiRoutes:
    """Which requests are the API's, and the API Gateway resource each one matches."""

    def __init__(self, api: ApiSpec) -> None:
        self.api = api
        self._public = {(method, path) for method, path in api.public_routes}
        self._public_paths = {path for _, path in api.public_routes}

    def is_public(self, method: str, path: str) -> bool:
        return (method, path) in self._public

    def is_api_path(self, path: str) -> bool:
        return any(
            path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in self.api.path_prefixes
        )

    def route(self, method: str, path: str) -> Route | None:
        """The matched resource; None when a public resource has no such method (API Gateway's 403)."""
        if path in self._public_paths:
            return Route(path, None, public=True) if (method, path) in self._public else None
        if path == "/":
            return Route("/", None, public=False)
        return Route(PROXY_RESOURCE, {"proxy": path.lstrip("/")}, public=False)


class LocalApiGateway:
    def __init__(
        self,
        api: ApiSpec,
        resources: LocalResources,
        *,
        function_name: str,
        allowed_origins: Iterable[str],
        port: int = DEFAULT_PORT,
        static_root: Path | None = None,
        authorizer: CognitoAuthorizer | None = None,
        report: Callable[[ApiRequest], None] | None = None,
        spec: ServalSpec | None = None,
    ) -> None:
        self.api = api
        self.report = report  # told of every API request answered (the console's line)
        self.resources = resources
        self.function_name = function_name
        self.port = port
        self.static_root = static_root
        self.routes = ApiRoutes(api)
        self.allowed_origins = tuple(allowed_origins)
        self.authorizer = authorizer or CognitoAuthorizer(
            issuer=resources.issuer,
            jwks_url=resources.jwks_url,
            client_ids=(resources.user_pool_client_id,),
            authorization_scopes=api.authorization_scopes,
        )
        # With the whole spec, the gateway is also the web app's OIDC server and serves its config.json.
        self.spec = spec
        self.oidc = (
            LocalOidc(spec, resources, base_url=self.url, jwks=self.authorizer.jwks)
            if spec is not None
            else None
        )
        self._lambda = boto3.client(
            "lambda",
            config=Config(
                read_timeout=INTEGRATION_TIMEOUT_S, connect_timeout=5, retries={"total_max_attempts": 1}
            ),
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------------ server

    def start(self) -> None:
        ensure_port_free(self.port, "API gateway")
        self._server = make_server(HOST, self.port, self, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-api-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if self.oidc is not None and self.oidc.handles(path):
            if request.method == "OPTIONS" and "Origin" in request.headers:
                return self._preflight(request)
            return self._with_cors(request, self.oidc.dispatch(request))
        if (
            self.spec is not None
            and path == self.spec.frontend.config_path
            and request.method in ("GET", "HEAD")
        ):
            return self._with_cors(
                request, _json_response(200, self.web_config(), {"Cache-Control": "no-cache"})
            )
        if not self.routes.is_api_path(path) or self._is_page_navigation(request):
            return self._static(request)
        if request.method == "OPTIONS" and "Origin" in request.headers:
            return self._preflight(request)
        started = time.monotonic()
        answer, claims = self._api(request)
        response = self._with_cors(request, answer)
        if self.report is not None:
            who = (claims.get("email") or claims.get("cognito:username")) if claims else None
            elapsed_ms = (time.monotonic() - started) * 1000
            path = request.full_path.rstrip("?")
            self.report(ApiRequest(request.method, path, response.status_code, elapsed_ms, who))
        return response

    def web_config(self) -> dict[str, Any]:
        """The web app's ``config.json``: this gateway's API and OIDC endpoints, the pool's ids."""
        assert self.spec is not None and self.oidc is not None
        return web_config(
            self.spec,
            api_url=self.url,
            region=self.resources.region,
            issuer=self.oidc.issuer,
            metadata_url=self.oidc.metadata_url,
            client_id=self.resources.user_pool_client_id,
            end_session_endpoint=self.oidc.end_session_endpoint,
        )

    def _is_page_navigation(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and request.headers.get("Sec-Fetch-Mode") == "navigate"
            and not self.routes.is_public(request.method, request.path)
            and self.static_root is not None
        )

    def _allow_origin(self, request: Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if "*" in self.allowed_origins:
            return "*"
        return origin if origin in self.allowed_origins else None

    def _with_cors(self, request: Request, response: Response) -> Response:
        """The gateway's own answers carry CORS headers, as its gateway responses do in AWS."""
        allow = self._allow_origin(request)
        if allow is not None and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = allow
        return response

    def _preflight(self, request: Request) -> Response:
        allow = self._allow_origin(request)
        if allow is None:
            return Response(status=204)
        headers = {
            "Access-Control-Allow-Origin": allow,
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        }
        if allow != "*":
            headers["Vary"] = "Origin"
        return Response(status=204, headers=headers)

    def _api(self, request: Request) -> tuple[Response, dict[str, str] | None]:
        """The answer to an API request, and the caller's verified claims (None: none)."""
        request_id = str(uuid.uuid4())
        error_headers = {"x-amzn-RequestId": request_id}
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            return _gateway_error("REQUEST_TOO_LARGE", error_headers), None
        route = self.routes.route(request.method, request.path)
        if route is None:
            error_type = {"x-amzn-ErrorType": "MissingAuthenticationTokenException"}
            return _gateway_error("MISSING_AUTHENTICATION_TOKEN", error_headers | error_type), None
        claims = None
        if not route.public:
            claims = self.authorizer.claims(request.headers.get("Authorization"))
            if claims is None:
                error_type = {"x-amzn-ErrorType": "UnauthorizedException"}
                return _gateway_error("UNAUTHORIZED", error_headers | error_type), None
        event = self.proxy_event(request, route, request_id, claims)
        return self._invoke(event, request_id), claims

    def proxy_event(
        self, request: Request, route: Route, request_id: str, claims: dict[str, str] | None
    ) -> dict[str, Any]:
        """The API Gateway REST proxy event of a request."""
        now = time.time()
        source_ip = request.remote_addr or HOST
        header_pairs = [*request.headers.items()]
        header_pairs += [
            ("X-Amzn-Trace-Id", f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"),
            ("X-Forwarded-For", source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", "http"),
        ]
        headers, multi_headers = _last_values(header_pairs)
        query, multi_query = _last_values(request.args.items(multi=True))
        raw_body = request.get_data(cache=False)
        request_context: dict[str, Any] = {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{self.api.stage_name}{request.path}",
            "accountId": self.resources.account_id,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "stage": self.api.stage_name,
            "domainPrefix": HOST,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.headers.get("User-Agent"),
                "user": None,
            },
            "domainName": request.host,
            "apiId": "local",
        }
        if claims is not None:
            request_context["authorizer"] = {"claims": claims}
        return {
            "resource": route.resource,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": route.path_parameters,
            "stageVariables": None,
            "requestContext": request_context,
            # Without binary media types API Gateway hands the function text.
            "body": raw_body.decode("utf-8", errors="replace") if raw_body else None,
            "isBase64Encoded": False,
        }

    def _invoke(self, event: dict[str, Any], request_id: str) -> Response:
        gateway_headers = {"x-amzn-RequestId": request_id}
        internal_error = _gateway_error("DEFAULT_5XX", gateway_headers)
        try:
            response = self._lambda.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(event)
            )
        except ReadTimeoutError:
            return _gateway_error("INTEGRATION_TIMEOUT", gateway_headers)
        payload = response["Payload"].read()
        if "FunctionError" in response:
            log.warning("the api function failed: %s", payload[:2000].decode(errors="replace"))
            return internal_error
        try:
            return self._http_response(json.loads(payload), gateway_headers)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "malformed Lambda proxy response (%s): %s", exc, payload[:500].decode(errors="replace")
            )
            return internal_error

    @staticmethod
    def _http_response(proxy: dict[str, Any], gateway_headers: dict[str, str]) -> Response:
        status = int(proxy["statusCode"])
        body = proxy.get("body") or ""
        if not isinstance(body, str):
            raise TypeError("body must be a string")
        data = base64.b64decode(body) if proxy.get("isBase64Encoded") else body.encode()
        response = Response(data, status=status)
        response.headers.clear()
        for name, value in (proxy.get("headers") or {}).items():
            response.headers[name] = str(value)
        for name, values in (proxy.get("multiValueHeaders") or {}).items():
            response.headers.remove(name)
            for value in values:
                response.headers.add(name, str(value))
        if "Content-Type" not in response.headers:
            response.headers["Content-Type"] = "application/json"
        for name, value in gateway_headers.items():
            response.headers[name] = value
        return response

    # ------------------------------------------------------------------ frontend

    def page_headers(self) -> dict[str, str]:
        """CloudFront's security headers, with this stack's hosts: the app calls this gateway
        (API, OIDC) and moto (presigned media and upload URLs)."""
        moto = self.resources.endpoint_url
        return page_headers(content_security_policy(connect=[moto], media=[moto], forms=[]))

    def _static(self, request: Request) -> Response:
        if self.static_root is None or request.method not in ("GET", "HEAD"):
            return Response("Not Found", status=404, content_type="text/plain")
        wanted = request.path.lstrip("/") or "index.html"
        try:
            response = send_from_directory(self.static_root, wanted, request.environ)
        except NotFound:
            if "text/html" not in request.headers.get("Accept", ""):
                return Response("Not Found", status=404, content_type="text/plain")
            response = send_from_directory(self.static_root, "index.html", request.environ)
        response.headers.update(self.page_headers())
        return response
