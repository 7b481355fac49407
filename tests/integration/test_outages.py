"""AWS trouble the SDK could not retry away answers "retry shortly", never a 500."""

from __future__ import annotations

import pytest

from serval.domain.actor import Actor
from tests.faults import Fault, Kind, injected
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import project


@pytest.mark.parametrize("kind", ["throttle", "error", "timeout"])
def test_a_read_that_aws_keeps_refusing_is_a_429_to_retry_not_a_500(
    aws: Aws, admin: Actor, kind: Kind
) -> None:
    # Given a project, read through pynamodb (whose errors wrap botocore's)
    project_id = project(admin)
    # When DynamoDB refuses the read after botocore's retries (throttled, failing, timing out)
    with injected() as faults:
        faults.arm(Fault(kind, 1, "GetItem"))
        answer = call("GET", f"/projects/{project_id}", admin)
        faults.disarm()
    # Then the API says to retry shortly, in its error envelope
    assert faults.fired == "GetItem"
    assert (answer.status, answer.body["error"]["code"]) == (429, "throttled")
    # And the same request then succeeds
    assert call("GET", f"/projects/{project_id}", admin).status == 200
