"""The API's AWS calls, with every retry, end well inside the API function's timeout."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import ENVIRONMENTS, EnvConfig
from infra.spec import build
from serval.adapters import clients


def _api(env: str):
    return build(ENVIRONMENTS[env], "123456789012", "us-east-1").functions["api"]


def test_the_standard_mode_worst_case_is_computed_from_the_config():
    # Given a budget of 3 attempts, 1 s to connect and 3 s to answer
    budget = clients.CallBudget(connect_timeout_s=1, read_timeout_s=3, max_attempts=3)
    # Then one call that times out every time takes 3 x 4 s plus botocore's two longest sleeps
    # (1 s and 2 s of exponential backoff, each plus 5 s of retry-after)
    assert budget.call_worst_case_s() == 12 + (1 + 5) + (2 + 5)
    # And an invocation ends at most one attempt and one sleep after its deadline
    assert budget.invocation_worst_case_s(12) == 12 + 4 + max(2 + 5, clients.OWN_MAX_BACKOFF_S)
    # And the botocore config carries exactly those numbers, in standard retry mode
    config = budget.config()
    assert (config.connect_timeout, config.read_timeout) == (1, 3)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_api_budget_ends_well_inside_the_api_timeout(env):
    # Given the deployed api function of an environment, the call budget and the deadline it is given
    api = _api(env)
    budget = clients.BUDGETS[api.environment["AWS_CALL_BUDGET"]]
    deadline = float(api.environment["AWS_CALL_DEADLINE_S"])
    assert deadline > 0
    # Then everything its calls and retries can take in all leaves at least 5 s of the function's
    # timeout for a cold start and its own work
    worst = budget.invocation_worst_case_s(deadline)
    assert worst <= api.timeout_s - 5, (worst, api.timeout_s)
    # And even one call alone, without the deadline, ends inside the timeout
    assert budget.call_worst_case_s() < api.timeout_s


def test_the_local_api_has_the_same_budget_without_a_deadline():
    # Given the local stack, whose moto latency grows with table size
    local, dev = _api("local"), _api("dev")
    # Then its api calls AWS with the deployed timeouts and attempts, and only the gateway's timeout bounds it
    assert local.environment["AWS_CALL_BUDGET"] == dev.environment["AWS_CALL_BUDGET"] == "request"
    assert float(local.environment["AWS_CALL_DEADLINE_S"]) == 0
    assert clients.BUDGETS["request"].call_worst_case_s() < local.timeout_s


def test_the_api_allows_cors_for_its_environments_frontend_origin_only():
    for name, config in ENVIRONMENTS.items():
        # Given an environment's api function
        api = _api(name)
        # Then its CORS origin is that environment's frontend origin, the only origin CORS allows
        assert api.environment["CORS_ALLOW_ORIGIN"] == config.frontend_origin
        assert config.cors_allowed_origins == (config.frontend_origin,)
    assert ENVIRONMENTS["local"].frontend_origin == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "origin", ["*", "https://app.example.com/", "https://app.example.com/path", "app.example.com"]
)
def test_a_frontend_origin_must_be_one_exact_origin(origin):
    # Given a config whose frontend origin is a wildcard, has a path, or no scheme
    # Then it is refused
    with pytest.raises(ValidationError):
        EnvConfig(name="dev", retain_data=False, audit_ttl_days=1, frontend_origin=origin)
