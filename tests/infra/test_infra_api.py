"""The REST API requires a Cognito token on every route except the public documentation and health routes."""

from __future__ import annotations

import json

import pytest
from cfn_helpers import only, resources


def _methods(template):
    """(HTTP method, path) -> method properties."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")

    def path_of(resource_id):
        if "Fn::GetAtt" in resource_id:  # the root resource
            return ""
        resource = api_resources[resource_id["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    return {
        (m["Properties"]["HttpMethod"], path_of(m["Properties"]["ResourceId"]) or "/"): m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
    }


def test_every_route_but_the_public_ones_requires_the_cognito_authorizer(synth):
    # Given the spec's public routes, the Api stack and its one Cognito authorizer
    public = set(synth.envs["dev"].spec.api.public_routes)
    assert public == {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/swagger")}
    template = synth.raw("dev", "Api")
    authorizer_id, authorizer = only(template, "AWS::ApiGateway::Authorizer")
    methods = _methods(template)
    # Then the proxy and the root are routed, and the public routes exist
    assert {("ANY", "/"), ("ANY", "/{proxy+}")} | public <= set(methods)
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert "UserPool" in json.dumps(authorizer["Properties"]["ProviderARNs"])
    for (verb, path), props in methods.items():
        if verb == "OPTIONS" or (verb, path) in public:
            # And CORS preflights and the public routes need no token
            assert props["AuthorizationType"] == "NONE", (verb, path)
        else:
            # And everything else needs a user pool token checked by that authorizer
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS", (verb, path)
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, (verb, path)


def test_cors_preflight_exists_on_every_resource(synth):
    # Given the Api stack's methods
    methods = _methods(synth.raw("dev", "Api"))
    paths = {path for _, path in methods}
    # Then each resource answers OPTIONS for the browser
    assert {path for verb, path in methods if verb == "OPTIONS"} == paths


def test_secured_routes_use_the_request_validator(synth):
    # Given the Api stack's request validator
    template = synth.raw("dev", "Api")
    validator_id, validator = only(template, "AWS::ApiGateway::RequestValidator")
    # Then it validates parameters and bodies, and every secured route uses it
    assert validator["Properties"]["ValidateRequestParameters"] is True
    assert validator["Properties"]["ValidateRequestBody"] is True
    for props in _methods(template).values():
        if props["AuthorizationType"] == "COGNITO_USER_POOLS":
            assert props["RequestValidatorId"] == {"Ref": validator_id}


def test_stage_is_throttled_traced_and_access_logged_as_json(synth):
    # Given the dev config
    config = synth.envs["dev"].spec.config
    template = synth.raw("dev", "Api")
    # When the stage is read
    _, stage = only(template, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    settings = props["MethodSettings"][0]
    assert props["StageName"] == synth.envs["dev"].spec.api.stage_name
    # Then it is the spec's stage, throttled per config, traced, execution-logged without bodies, and access-logged as JSON
    assert (settings["HttpMethod"], settings["ResourcePath"]) == ("*", "/*")
    assert settings["ThrottlingRateLimit"] == config.api_rate_limit
    assert settings["ThrottlingBurstLimit"] == config.api_burst_limit
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert props["TracingEnabled"] is True
    log_format = json.loads(props["AccessLogSetting"]["Format"])
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status"} <= set(log_format)
    assert "log-group" in json.dumps(props["AccessLogSetting"]["DestinationArn"])


def test_api_url_is_an_output(synth):
    # Given the Api stack
    outputs = synth.raw("dev", "Api")["Outputs"]
    # Then its one URL output points at the stage
    assert "ApiUrl" in outputs
    assert "execute-api" in json.dumps(outputs["ApiUrl"]["Value"])
    assert not [name for name in outputs if name.startswith("RestApiEndpoint")]


EXPECTED_GATEWAY_ERRORS = {
    # response type: (status, error code); None keeps the type's own status (any 4xx, any 5xx)
    "UNAUTHORIZED": ("401", "unauthorized"),
    "EXPIRED_TOKEN": ("401", "unauthorized"),
    "ACCESS_DENIED": ("403", "forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": ("403", "forbidden"),
    "THROTTLED": ("429", "throttled"),
    "QUOTA_EXCEEDED": ("429", "throttled"),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
    "INTEGRATION_TIMEOUT": ("504", "gateway_timeout"),
    "DEFAULT_4XX": (None, "bad_request"),
    "DEFAULT_5XX": (None, "internal_error"),
}


def _render(template: str) -> dict:
    """A gateway response template with API Gateway's variables filled in, parsed as JSON."""
    text = template.replace("$context.error.messageString", '"Unauthorized"').replace(
        "$context.requestId", "req-1"
    )
    return json.loads(text)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_gateway_answers_use_the_error_envelope_with_cors(synth, env):
    # Given the Api stack's gateway responses and the environment's frontend origin
    template = synth.raw(env, "Api")
    origin = synth.envs[env].spec.config.frontend_origin
    found = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    # Then each of API Gateway's own refusals has one, with its status
    assert set(found) == set(EXPECTED_GATEWAY_ERRORS)
    for response_type, (status, code) in EXPECTED_GATEWAY_ERRORS.items():
        props = found[response_type]
        assert props.get("StatusCode") == status, response_type
        # And its body is the API's envelope with the documented code, the gateway's message and the request id
        body = _render(props["ResponseTemplates"]["application/json"])
        assert body == {
            "error": {"code": code, "message": "Unauthorized", "details": {"request_id": "req-1"}}
        }
        # And a browser on the frontend's origin can read it
        assert props["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"
        }


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_cors_preflights_allow_only_the_frontend_origin(synth, env):
    # Given the environment's frontend origin and the Api stack's OPTIONS methods
    origin = synth.envs[env].spec.config.frontend_origin
    assert origin.startswith("https://") and "*" not in origin
    options = [p for (verb, _), p in _methods(synth.raw(env, "Api")).items() if verb == "OPTIONS"]
    assert options
    for props in options:
        # When the preflight's mock integration answers
        (response,) = props["Integration"]["IntegrationResponses"]
        # Then it allows that one origin, never "*", and the Idempotency-Key header
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{origin}'"
        assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_client_is_rate_limited_per_session_and_per_ip_with_a_429_envelope(synth, env):
    # Given the environment's per-client limits and the Api stack's WAF web ACL
    config = synth.envs[env].spec.config
    template = synth.raw(env, "Api")
    acl_id, acl = only(template, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    assert set(rules) == {"per-session", "per-ip"}
    # Then one rate rule counts per Authorization header (one signed-in session) ...
    session = rules["per-session"]["Statement"]["RateBasedStatement"]
    assert session["AggregateKeyType"] == "CUSTOM_KEYS"
    assert session["CustomKeys"] == [
        {"Header": {"Name": "authorization", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}
    ]
    assert session["Limit"] == config.token_rate_limit
    # ... and one per source IP, both over the configured window
    by_ip = rules["per-ip"]["Statement"]["RateBasedStatement"]
    assert by_ip["AggregateKeyType"] == "IP" and by_ip["Limit"] == config.ip_rate_limit
    assert session["EvaluationWindowSec"] == by_ip["EvaluationWindowSec"] == config.client_rate_window_s
    # And either limit stays well under the stage's own rate over the same window
    assert (
        config.token_rate_limit < config.ip_rate_limit < config.api_rate_limit * config.client_rate_window_s
    )
    # And a limited client is answered 429 with the error envelope
    for rule in rules.values():
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        body = props["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        assert json.loads(body["Content"])["error"]["code"] == "throttled"
    # And the web ACL guards the API's stage
    _, association = only(template, "AWS::WAFv2::WebACLAssociation")
    stage_id, _ = only(template, "AWS::ApiGateway::Stage")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert {"Ref": stage_id} in association["Properties"]["ResourceArn"]["Fn::Join"][1]
