"""Project stats come from counters: exact counts, per-day throughput, a bounded number of reads."""

from __future__ import annotations

from bench.metering import metered
from serval.domain.actor import Actor
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join
from tests.integration.queue_helpers import Workflow, lease, members, person, project, queued, steps, submit
from tests.integration.test_api import _create_project

__all__ = ["steps"]  # the fixture, imported for this module

CLASSIFY = {"results": [{"control": "shape", "type": "classification", "labels": ["circle"]}]}


def test_stats_count_by_status_and_per_day_from_counters(
    aws: Aws, admin: Actor, annotator: Actor, steps: Workflow
) -> None:
    # Given a project with 30 tasks, one deleted, and three submits by two people today
    project = _create_project(admin)
    enrol(annotator)
    join(project, annotator, "annotator")
    created = call(
        "POST", f"/projects/{project}/tasks", admin, [{"data": {"text": f"t{i}"}} for i in range(30)]
    )
    task_ids = created.body["task_ids"]
    assert call("DELETE", f"/projects/{project}/tasks/{task_ids[0]}", admin).status == 204
    for task in task_ids[1:4]:
        queue.enter_label(project, task, token=f"tok-{task}", rework=0)
    for who, lead in ((annotator, 10), (annotator, 30), (admin, 20)):
        leased = lease(project, who)["task"]["task_id"]
        assert submit(project, leased, who, CLASSIFY | {"lead_time_s": lead}).status == 200

    # When a member asks for the stats
    with metered() as calls:
        answer = call("GET", f"/projects/{project}/stats", annotator)

    # Then they are exact, from counters
    assert answer.status == 200, answer.body
    stats = answer.body
    assert stats["tasks"] == 29
    assert (stats["by_status"]["new"], stats["by_status"]["submitted"]) == (26, 3)
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


def _classify(label: str) -> dict[str, object]:
    return {"results": [{"control": "sentiment", "type": "classification", "labels": [label]}]}


def test_stats_report_agreement_and_review_rejection_rate_from_counters(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given an overlap-2 project (threshold 0.8) with three queued tasks, two annotators, a reviewer
    project_id = project(admin, overlap=2, agreement_threshold=0.8)
    task_ids = queued(project_id, admin, 3)
    a, b, reviewer = person("u-s1"), person("u-s2"), person("u-s3", "reviewer")
    members(project_id, "annotator", a, b)
    members(project_id, "reviewer", reviewer)

    # When two rounds agree and one disagrees
    for task_id, labels in zip(task_ids, (["pos", "pos"], ["neg", "neg"], ["pos", "neg"]), strict=True):
        for who, label in zip((a, b), labels, strict=True):
            assert lease(project_id, who)["task"]["task_id"] == task_id
            assert submit(project_id, task_id, who, _classify(label)).status == 200
    # And a reviewer rejects one task, then approves two (one with an edit)
    decisions = (
        {"decision": "reject", "comment": "no"},
        {"decision": "approve"},
        {"decision": "approve", "results": _classify("neg")["results"]},
    )
    for task_id, decision in zip(task_ids, decisions, strict=True):
        queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
        leased = call("POST", f"/projects/{project_id}/review/next", reviewer)
        assert leased.body["task"]["task_id"] == task_id, leased.body
        answer = call("POST", f"/projects/{project_id}/tasks/{task_id}/review", reviewer, decision)
        assert answer.status == 200, answer.body

    # Then the stats count three rounds (1, 1 and 0.5: a 1-of-2 majority), one below the
    # threshold, and the decisions
    with metered() as calls:
        stats = call("GET", f"/projects/{project_id}/stats", admin).body
    assert stats["agreement"] == {"rounds": 3, "mean": 0.8333, "below_threshold": 1}
    assert stats["review"] == {"approved": 2, "edited": 1, "rejected": 1, "rejection_rate": 0.3333}
    # And still from the counter shards: no Scan, no read of tasks
    assert calls.count("Scan") == 0
    assert sum(n for name, n in calls.calls.items() if name.startswith("dynamodb:")) <= 5


def test_stats_of_a_fresh_project_have_no_rates(aws: Aws, admin: Actor) -> None:
    stats = call("GET", f"/projects/{project(admin)}/stats", admin).body
    assert stats["agreement"] == {"rounds": 0, "mean": None, "below_threshold": 0}
    assert stats["review"] == {"approved": 0, "edited": 0, "rejected": 0, "rejection_rate": None}
