"""Project stats come from counters: exact counts, per-day throughput, a bounded number of reads."""

from __future__ import annotations

from bench.metering import metered
from serval.domain.actor import Actor
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join
from tests.integration.test_api import _create_project

CLASSIFY = {"results": [{"control": "shape", "type": "classification", "labels": ["circle"]}]}


def test_stats_count_by_status_and_per_day_from_counters(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a project with 30 tasks, one deleted, and three annotations by two people today
    project = _create_project(admin)
    enrol(annotator)
    join(project, annotator, "annotator")
    created = call(
        "POST", f"/projects/{project}/tasks", admin, [{"data": {"text": f"t{i}"}} for i in range(30)]
    )
    task_ids = created.body["task_ids"]
    assert call("DELETE", f"/projects/{project}/tasks/{task_ids[0]}", admin).status == 204
    for who, task, lead in (
        (annotator, task_ids[1], 10),
        (annotator, task_ids[2], 30),
        (admin, task_ids[3], 20),
    ):
        body = CLASSIFY | {"lead_time_s": lead}
        assert call("POST", f"/projects/{project}/tasks/{task}/annotations", who, body).status == 201

    # When a member asks for the stats
    with metered() as calls:
        answer = call("GET", f"/projects/{project}/stats", annotator)

    # Then they are exact, from counters
    assert answer.status == 200, answer.body
    stats = answer.body
    assert stats["tasks"] == 29
    assert stats["by_status"]["new"] == 29
    assert (stats["annotations"], stats["active_users"]) == (3, 2)
    assert [d["annotations"] for d in stats["throughput"]] == [3]
    assert stats["throughput"][0]["day"] == stats["until"]
    assert 16 <= stats["lead_time_s_median"] <= 32  # 20 s, within its log2 bucket
    # And they took a fixed handful of reads: no Scan, and no read of the tasks
    assert calls.count("Scan") == 0
    dynamo_calls = {name: n for name, n in calls.calls.items() if name.startswith("dynamodb:")}
    assert sum(dynamo_calls.values()) <= 5, dynamo_calls


def test_stats_of_another_project_are_hidden(aws: Aws, admin: Actor, annotator: Actor) -> None:
    project = _create_project(admin)
    enrol(annotator)
    answer = call("GET", f"/projects/{project}/stats", annotator)
    assert (answer.status, answer.body["error"]["code"]) == (404, "not_found")
