"""The REST API requires a Cognito token on every route except the public documentation and health routes."""

from __future__ import annotations

import json

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
