"""Bulk operations as async jobs on moto: API -> jobs queue -> worker -> tasks, counters, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from serval import keys
from serval.adapters import dynamo
from serval.adapters import tasks as task_store
from serval.domain.actor import Actor
from serval.domain.media import MediaType
from serval.domain.models import Task, TextRef, utcnow
from serval.logic import bulk, jobs
from tests.integration.api_client import call
from tests.integration.conftest import Aws

LABELS = {"controls": [{"name": "shape", "type": "classification", "classes": [{"name": "circle"}]}]}


def _project(actor: Actor, name: str = "P") -> str:
    response = call(
        "POST", "/projects", actor, {"name": name, "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _tasks_via_api(project_id: str, actor: Actor, n: int) -> list[str]:
    response = call(
        "POST", f"/projects/{project_id}/tasks", actor, [{"data": {"text": f"t{i}"}} for i in range(n)]
    )
    assert response.status == 201, response.body
    return [str(t) for t in response.body["task_ids"]]


def _tasks_fast(project_id: str, n: int) -> list[str]:
    """Many tasks at once through the ingest adapter's batch writes (no counters needed here)."""
    at = utcnow()
    tasks = [
        Task(
            task_id=f"t-{i:06d}",
            project_id=project_id,
            data={"text": TextRef(text=f"t{i}")},
            media_type=MediaType.TEXT,
            created_at=at,
            updated_at=at,
        )
        for i in range(n)
    ]
    task_store.batch_put(tasks)
    return [t.task_id for t in tasks]


def _start(project_id: str, actor: Actor, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    response = call("POST", f"/projects/{project_id}/bulk", actor, body, headers=headers)
    assert response.status == 202, response.body
    return dict(response.body)


def _messages(aws: Aws) -> list[str]:
    got = aws.sqs.receive_message(QueueUrl=aws.env["JOBS_QUEUE_URL"], MaxNumberOfMessages=10)
    for m in got.get("Messages", []):
        aws.sqs.delete_message(QueueUrl=aws.env["JOBS_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
    return [m["Body"] for m in got.get("Messages", [])]


def _run_all(aws: Aws, time_left: float = 900.0) -> list[jobs.Outcome]:
    """Work the jobs queue until it is empty (paused jobs re-announce themselves)."""
    outcomes = []
    while bodies := _messages(aws):
        outcomes += [jobs.process_message(b, lambda: time_left) for b in bodies]
    return outcomes


def _job(project_id: str, actor: Actor, job_id: str) -> dict[str, Any]:
    response = call("GET", f"/projects/{project_id}/bulk/{job_id}", actor)
    assert response.status == 200, response.body
    return dict(response.body)


def _bulk_audit(project_id: str, actor: Actor, action: str) -> list[dict[str, Any]]:
    response = call("GET", f"/projects/{project_id}/audit?action={action}&limit=100", actor)
    assert response.status == 200, response.body
    return list(response.body["items"])


def _tags(project_id: str, task_ids: list[str]) -> dict[str, list[str]]:
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    return {
        i.task_id: list(i.tags or []) for i in m.TaskItem.batch_get([(pk, keys.task_sk(t)) for t in task_ids])
    }


def test_tag_10000_tasks_in_one_job(aws: Aws, admin: Actor) -> None:
    # Given a project with 10,000 tasks
    project_id = _project(admin)
    ids = _tasks_fast(project_id, 10_000)
    # When a bulk tag job over all of them is started and worked
    job = _start(project_id, admin, {"operation": "tag", "tags": ["bulk"], "selection": {"task_ids": ids}})
    assert job["kind"] == "bulk" and job["status"] == "queued"
    [outcome] = _run_all(aws)
    # Then it succeeded with every task done and tagged (tag links included)
    assert outcome.kind == "succeeded", outcome.detail
    view = _job(project_id, admin, job["job_id"])
    assert view["status"] == "succeeded"
    assert view["counts"] == {"done": 10_000, "failed": 0}
    assert view["processed"] == view["total"] == 10_000
    assert all(tags == ["bulk"] for tags in _tags(project_id, ids).values())
    listed = call("GET", f"/projects/{project_id}/tasks?tag=bulk&limit=200", admin)
    assert len(listed.body["items"]) == 200
    # And exactly one audit record covers the job, with its counts and the ids in S3
    [record] = _bulk_audit(project_id, admin, "task.bulk_tag")
    assert record["counts"] == {"done": 10_000, "failed": 0}
    stored = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=record["affected_ids_key"])
    assert sorted(json.loads(stored["Body"].read())) == ids
    assert _bulk_audit(project_id, admin, "task.update") == []


def test_redelivery_resume_and_idempotency_key_never_double_apply(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a project with 12 tasks and small chunks
    monkeypatch.setattr(bulk, "CHUNK", 5)
    project_id = _project(admin)
    ids = _tasks_fast(project_id, 12)
    body = {"operation": "tag", "tags": ["a", "b"], "selection": {"task_ids": ids}}
    # When the same request is posted twice with one Idempotency-Key
    first = _start(project_id, admin, body, key="k-1")
    second = _start(project_id, admin, body, key="k-1")
    # Then both return the same job, announced once
    assert second["job_id"] == first["job_id"]
    [message] = _messages(aws)
    # And the same key with another body is a conflict
    other = call(
        "POST",
        f"/projects/{project_id}/bulk",
        admin,
        {**body, "tags": ["c"]},
        headers={"Idempotency-Key": "k-1"},
    )
    assert other.status == 409, other.body
    # When the worker runs out of time after the first chunk, it checkpoints and pauses
    paused = jobs.process_message(message, lambda: 0.0)
    assert paused.kind == "paused"
    view = _job(project_id, admin, first["job_id"])
    assert view["processed"] == 5 and view["counts"] == {"done": 5, "failed": 0}
    # and the continuation (plus a redelivered copy of the original message) finishes once
    outcomes = [*_run_all(aws), jobs.process_message(message, lambda: 900.0)]
    assert [o.kind for o in outcomes] == ["succeeded", "skipped"]
    view = _job(project_id, admin, first["job_id"])
    assert view["counts"] == {"done": 12, "failed": 0}
    assert all(sorted(t) == ["a", "b"] for t in _tags(project_id, ids).values())
    assert len(_bulk_audit(project_id, admin, "task.bulk_tag")) == 1


def test_archive_and_delete_keep_counters_exact_and_never_touch_another_project(
    aws: Aws, admin: Actor
) -> None:
    # Given two projects with tasks created through the API (counted per status)
    project_id = _project(admin)
    ids = _tasks_via_api(project_id, admin, 6)
    other_project = _project(admin, "Other")
    [foreign] = _tasks_via_api(other_project, admin, 1)
    # When three are archived (one listed twice), and archived again by a second job
    job = _start(project_id, admin, {"operation": "archive", "selection": {"task_ids": [*ids[:3], ids[0]]}})
    again = _start(project_id, admin, {"operation": "archive", "selection": {"task_ids": ids[:3]}})
    _run_all(aws)
    # Then both succeed, the repeat counting already archived tasks as done
    assert _job(project_id, admin, job["job_id"])["counts"] == {"done": 3, "failed": 0}
    assert _job(project_id, admin, again["job_id"])["counts"] == {"done": 3, "failed": 0}
    counters = dynamo.read_counters(project_id)
    assert (counters["new"], counters["archived"]) == (3, 3)
    # When an archived and a new task are deleted, with an id of the other project
    deleted = _start(
        project_id, admin, {"operation": "delete", "selection": {"task_ids": [ids[0], ids[5], foreign]}}
    )
    _run_all(aws)
    # Then two are done, the foreign id failed, and the counters still match the items
    view = _job(project_id, admin, deleted["job_id"])
    assert view["counts"] == {"done": 2, "failed": 1}
    assert view["failures"] == [{"task_id": foreign, "reason": "no such task in this project"}]
    assert view["error"] and foreign in view["error"]
    counters = dynamo.read_counters(project_id)
    assert (counters["new"], counters["archived"]) == (2, 2)
    assert call("GET", f"/projects/{project_id}/tasks/{ids[0]}", admin).status == 404
    assert call("GET", f"/projects/{other_project}/tasks/{foreign}", admin).status == 200
    assert dynamo.read_counters(other_project)["new"] == 1
    [record] = _bulk_audit(project_id, admin, "task.bulk_delete")
    assert record["counts"] == {"done": 2, "failed": 1}
    assert _bulk_audit(project_id, admin, "task.delete") == []


def test_selection_by_filter(aws: Aws, admin: Actor) -> None:
    # Given six tasks, two of them tagged "x" and one archived
    project_id = _project(admin)
    ids = _tasks_via_api(project_id, admin, 6)
    _start(project_id, admin, {"operation": "tag", "tags": ["x"], "selection": {"task_ids": ids[:2]}})
    _start(project_id, admin, {"operation": "archive", "selection": {"task_ids": [ids[5]]}})
    _run_all(aws)
    # When the priority is set for the tasks tagged "x", and others are tagged by status
    by_tag = _start(
        project_id, admin, {"operation": "set_priority", "priority": 7, "selection": {"filter": {"tag": "x"}}}
    )
    by_status = _start(
        project_id,
        admin,
        {"operation": "tag", "tags": ["y"], "selection": {"filter": {"status": "new", "media_type": "text"}}},
    )
    _run_all(aws)
    # Then each job worked on exactly the tasks its filter selected
    assert _job(project_id, admin, by_tag["job_id"])["counts"] == {"done": 2, "failed": 0}
    assert _job(project_id, admin, by_status["job_id"])["counts"] == {"done": 5, "failed": 0}
    priorities = {t: call("GET", f"/projects/{project_id}/tasks/{t}", admin).body["priority"] for t in ids}
    assert [priorities[t] for t in ids] == [7, 7, 0, 0, 0, 0]
    tags = _tags(project_id, ids)
    assert tags[ids[5]] == [] and all("y" in tags[t] for t in ids[:5])
    # And a time window that excludes every task selects none
    empty = _start(
        project_id,
        admin,
        {
            "operation": "untag",
            "tags": ["x"],
            "selection": {"filter": {"created_to": "2000-01-01T00:00:00Z"}},
        },
    )
    _run_all(aws)
    assert _job(project_id, admin, empty["job_id"])["counts"] == {"done": 0, "failed": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "tag", "selection": {"task_ids": ["t1"]}},
        {"operation": "untag", "tags": [], "selection": {"task_ids": ["t1"]}},
        {"operation": "set_priority", "selection": {"task_ids": ["t1"]}},
        {"operation": "archive", "tags": ["a"], "selection": {"task_ids": ["t1"]}},
        {"operation": "delete", "selection": {}},
        {"operation": "delete", "selection": {"task_ids": ["t1"], "filter": {"status": "new"}}},
        {"operation": "delete", "selection": {"task_ids": []}},
        {"operation": "explode", "selection": {"task_ids": ["t1"]}},
        {"operation": "delete", "selection": {"filter": {"status": "nope"}}},
    ],
)
def test_bad_bodies_are_422(aws: Aws, admin: Actor, body: dict[str, Any]) -> None:
    project_id = _project(admin)
    response = call("POST", f"/projects/{project_id}/bulk", admin, body)
    assert response.status == 422, response.body
    assert _messages(aws) == []


def test_unknown_bulk_job_is_404(aws: Aws, admin: Actor) -> None:
    project_id = _project(admin)
    assert call("GET", f"/projects/{project_id}/bulk/job-nope", admin).status == 404
