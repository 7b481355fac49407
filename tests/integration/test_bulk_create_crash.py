"""A bulk create that crashed after writing its tasks, retried with its Idempotency-Key."""

from __future__ import annotations

import pytest

from serval.adapters import dynamo
from serval.domain.actor import Actor
from serval.logic import tasks as tasks_logic
from tests.faults import Crash, Fault, injected
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import project


def test_a_retry_after_a_crash_reports_the_tasks_it_wrote_as_created_not_as_duplicates(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a project with a task whose external id the request repeats (a real duplicate)
    project_id = project(admin)
    url = f"/projects/{project_id}/tasks"
    assert call("POST", url, admin, [{"data": {"text": "old"}, "external_id": "dup"}]).status == 201
    body = [{"data": {"text": f"t{i}"}} for i in range(5)] + [{"data": {"text": "x"}, "external_id": "dup"}]
    headers = {"Idempotency-Key": "crash-1"}
    # And a bulk create whose function dies right after the transaction that wrote its tasks:
    # its first transaction claims the import, the second is cancelled by the duplicate, the
    # third writes the five others. Its hold on the key is over by the time the client retries.
    held = tasks_logic.CREATE_LEASE_SECONDS
    monkeypatch.setattr(tasks_logic, "CREATE_LEASE_SECONDS", -1)
    with injected() as faults:
        faults.arm(Fault("crash", 3, "TransactWriteItems"))
        with pytest.raises(Crash):
            call("POST", url, admin, body, headers=headers)
        faults.disarm()
    assert faults.fired == "TransactWriteItems"
    assert dynamo.read_project_counters(project_id).by_status.get("new") == 6

    # When the client retries with the same key
    monkeypatch.setattr(tasks_logic, "CREATE_LEASE_SECONDS", held)
    retried = call("POST", url, admin, body, headers=headers)

    # Then it reports the five tasks as created and only the repeated external id as a duplicate
    assert retried.status == 201, retried.body
    assert (retried.body["created"], retried.body["duplicates"]) == (5, 1)
    # And the import says the same, nothing was written twice, and a third call replays it
    imported = call("GET", f"/projects/{project_id}/imports/{retried.body['import_id']}", admin).body
    assert (imported["status"], imported["tasks_created"], imported["duplicates"]) == ("completed", 5, 1)
    assert dynamo.read_project_counters(project_id).by_status.get("new") == 6
    again = call("POST", url, admin, body, headers=headers)
    assert (again.body["created"], again.body["duplicates"], again.body["replayed"]) == (5, 1, True)
