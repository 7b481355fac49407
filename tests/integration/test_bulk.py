"""Bulk operations as async jobs on moto: API -> jobs queue -> worker -> tasks, counters, audit."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from serval import keys
from serval.adapters import bulk as bulk_store
from serval.adapters import dynamo, workflow
from serval.adapters import tasks as task_store
from serval.domain.actor import Actor
from serval.domain.media import MediaType
from serval.domain.models import Task, TextRef, utcnow
from serval.logic import bulk, jobs, queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import (
    Workflow,
    lease,
    members,
    new_tasks,
    person,
    project,
    queued,
    steps,
    submit,
)

__all__ = ["steps"]  # the fixture, imported for this module

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
    assert record["affected_ids_key"].startswith("audit-evidence/")  # not under an expiring prefix
    stored = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=record["affected_ids_key"])["Body"].read()
    assert sorted(json.loads(stored)) == ids
    assert record["affected_ids_sha256"] == hashlib.sha256(stored).hexdigest()
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


# ---- assign, unassign, requeue, accept predictions ------------------------------------------


def _run_one(aws: Aws, project_id: str, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    """Start a bulk job, work it, and return its view."""
    job = _start(project_id, actor, body)
    [outcome] = _run_all(aws)
    assert outcome.kind == "succeeded", outcome.detail
    return _job(project_id, actor, job["job_id"])


def _crash_after_first_chunk_then_rerun(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, project_id: str, actor: Actor, body: dict[str, Any]
) -> dict[str, Any]:
    """Start a job whose worker dies after applying its first chunk but before checkpointing it;
    the redelivered message re-runs that chunk. Returns the job's view."""
    monkeypatch.setattr(jobs, "LEASE_SECONDS", -1)  # a dead worker's lease is over at once
    real_checkpoint = bulk_store.checkpoint
    crashed: list[int] = []

    def checkpoint(claim: Any, expected_offset: int | None, *args: Any, **kwargs: Any) -> None:
        if expected_offset == 0 and not crashed:
            crashed.append(1)
            raise ConnectionError("the worker lost its connection")  # retried
        real_checkpoint(claim, expected_offset, *args, **kwargs)

    monkeypatch.setattr(bulk_store, "checkpoint", checkpoint)
    job = _start(project_id, actor, body)
    [message] = _messages(aws)
    with pytest.raises(ConnectionError):
        jobs.process_message(message, lambda: 900.0)
    assert jobs.process_message(message, lambda: 900.0).kind == "succeeded"
    assert crashed == [1]
    return _job(project_id, actor, job["job_id"])


def _item(project_id: str, task_id: str) -> Any:
    return task_store.get_item(project_id, task_id)


def _in_review(project_id: str, admin: Actor, ann: Actor) -> str:
    """A task labelled by ``ann`` and put into review by the workflow."""
    (task_id,) = queued(project_id, admin, 1, text="review me")
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert submit(project_id, task_id, ann).status == 200
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
    return task_id


def test_assign_and_unassign_by_ids_and_by_filter(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given four queued tasks, one of them leased by another annotator, and a task of another project
    project_id = project(admin, priority_mode="fifo")
    ann, other = person("u-ann"), person("u-other")
    members(project_id, "annotator", ann, other)
    q0, q1, q2, q3 = queued(project_id, admin, 4)
    assert lease(project_id, other)["task"]["task_id"] == q0
    foreign_project = project(admin)
    (foreign,) = queued(foreign_project, admin, 1)
    # When q1, q2, the leased q0 and the foreign task are assigned to ann (the worker crashing once)
    view = _crash_after_first_chunk_then_rerun(
        aws,
        monkeypatch,
        project_id,
        admin,
        {"operation": "assign", "user_id": ann.user_id, "selection": {"task_ids": [q1, q2, q0, foreign]}},
    )
    # Then q1 and q2 are reserved for ann; the leased and the foreign task failed with their reasons
    assert view["counts"] == {"done": 2, "failed": 2}
    reasons = {f["task_id"]: f["reason"] for f in view["failures"]}
    assert reasons == {
        q0: "a task in status leased cannot be assigned (only new, prelabeled, queued, rejected)",
        foreign: "no such task in this project",
    }
    assert [_item(project_id, t).assignee for t in (q0, q1, q2, q3)] == [None, ann.user_id, ann.user_id, None]
    assert _item(foreign_project, foreign).assignee is None
    # And only ann is offered them: the other annotator gets q3, then nothing
    assert lease(project_id, other)["task"]["task_id"] == q3
    assert lease(project_id, other)["task"] is None
    # When every queued task is assigned to ann by filter, again
    by_filter = {"operation": "assign", "user_id": ann.user_id, "selection": {"filter": {"status": "queued"}}}
    # Then the tasks already reserved for ann count as done
    assert _run_one(aws, project_id, admin, by_filter)["counts"] == {"done": 2, "failed": 0}
    # When the queued tasks are unassigned by filter
    unassign = {"operation": "unassign", "selection": {"filter": {"status": "queued"}}}
    assert _run_one(aws, project_id, admin, unassign)["counts"] == {"done": 2, "failed": 0}
    # Then they are free again, and one audit record covers each job
    assert _item(project_id, q1).assignee is None and _item(project_id, q2).assignee is None
    assert lease(project_id, other)["task"]["task_id"] == q1
    assert len(_bulk_audit(project_id, admin, "task.bulk_assign")) == 2
    assert len(_bulk_audit(project_id, admin, "task.bulk_unassign")) == 1
    assert _bulk_audit(project_id, admin, "task.assign") == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"operation": "assign", "selection": {"task_ids": ["t1"]}}, 422),  # user_id needed
        ({"operation": "assign", "user_id": "u-nobody", "selection": {"task_ids": ["t1"]}}, 422),
        ({"operation": "assign", "user_id": "u-rev", "selection": {"task_ids": ["t1"]}}, 202),
        ({"operation": "unassign", "user_id": "u-ann", "selection": {"task_ids": ["t1"]}}, 422),
        ({"operation": "requeue", "user_id": "u-ann", "selection": {"task_ids": ["t1"]}}, 422),
        ({"operation": "accept_predictions", "tags": ["a"], "selection": {"task_ids": ["t1"]}}, 422),
    ],
)
def test_assign_validates_its_assignee_once_when_the_job_is_created(
    aws: Aws, admin: Actor, body: dict[str, Any], status: int
) -> None:
    # Given a project with a reviewer member (who may annotate) and a user who is no member
    project_id = project(admin)
    members(project_id, "reviewer", person("u-rev", "reviewer"))
    person("u-nobody")
    # When a bulk assign is requested
    response = call("POST", f"/projects/{project_id}/bulk", admin, body)
    # Then a missing or unfit assignee is a 422 and nothing is queued
    assert response.status == status, response.body
    assert len(_messages(aws)) == (1 if status == 202 else 0)


def test_requeue_frees_leased_assigned_and_in_review_tasks(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a leased task, a queued task reserved for ann, a task in review leased by a reviewer,
    # a task whose workflow has not started, and a task of another project
    project_id = project(admin, priority_mode="fifo")
    ann, other, reviewer = person("u-ann"), person("u-other"), person("u-rev", "reviewer")
    members(project_id, "annotator", ann, other)
    members(project_id, "reviewer", reviewer)
    review = _in_review(project_id, admin, ann)
    assert call("POST", f"/projects/{project_id}/review/next", reviewer).body["task"]["task_id"] == review
    leased, assigned = queued(project_id, admin, 2)
    assert lease(project_id, ann)["task"]["task_id"] == leased
    assert (
        call(
            "POST", f"/projects/{project_id}/tasks/{assigned}/assign", admin, {"user_id": ann.user_id}
        ).status
        == 200
    )
    (fresh,) = new_tasks(project_id, admin, [{"data": {"text": "not started"}}])
    foreign_project = project(admin)
    (foreign,) = queued(foreign_project, admin, 1)
    # When they are requeued (the worker crashing once after its first chunk)
    ids = [leased, assigned, review, fresh, foreign]
    view = _crash_after_first_chunk_then_rerun(
        aws, monkeypatch, project_id, admin, {"operation": "requeue", "selection": {"task_ids": ids}}
    )
    # Then three are done; the unstarted and the foreign task failed with their reasons
    assert view["counts"] == {"done": 3, "failed": 2}
    reasons = {f["task_id"]: f["reason"] for f in view["failures"]}
    assert reasons == {
        fresh: "the task's workflow has not queued it yet; it joins the queue when it does",
        foreign: "no such task in this project",
    }
    # And the lease is gone: ann's submit is refused, and another annotator may take the task
    refused = submit(project_id, leased, ann)
    assert (refused.status, refused.body["error"]["code"]) == (409, "lease_not_held")
    assert _item(project_id, assigned).assignee is None
    taken = [lease(project_id, other)["task"]["task_id"] for _ in range(2)]
    assert taken == [leased, assigned]
    # And the review step was completed once with "requeue"; the reviewer lost the task
    assert [o for t, o in steps.sent if t == f"rev-{review}"] == [{"decision": "requeue", "comment": None}]
    decided = call("POST", f"/projects/{project_id}/tasks/{review}/review", reviewer, {"decision": "approve"})
    assert (decided.status, decided.body["error"]["code"]) == (409, "lease_not_held")
    assert _item(project_id, review).review_token is None
    # When the workflow's Label step runs again (no rework round counted by the requeue path,
    # and even with earlier rework the task is not reserved for its last annotator)
    queue.enter_label(project_id, review, token=f"tok2-{review}", rework=1)
    # Then the task is queued and free: the other annotator may label it
    item = _item(project_id, review)
    assert (item.status, item.assignee, item.lease_owner) == ("queued", None, None)
    assert lease(project_id, other)["task"]["task_id"] == review
    # And the foreign task was never touched
    assert _item(foreign_project, foreign).status == "queued"
    counts = dynamo.read_counters(project_id)
    assert (counts["queued"], counts["leased"], counts["in_review"], counts["new"]) == (0, 3, 0, 1)
    [record] = _bulk_audit(project_id, admin, "task.bulk_requeue")
    assert record["counts"] == {"done": 3, "failed": 2}
    assert _bulk_audit(project_id, admin, "task.requeue") == []


def test_requeue_by_filter_counts_free_tasks_as_done_and_refuses_finished_ones(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given two free queued tasks and an approved one
    project_id = project(admin)
    ann, reviewer = person("u-ann"), person("u-rev", "reviewer")
    members(project_id, "annotator", ann)
    members(project_id, "reviewer", reviewer)
    done = _in_review(project_id, admin, ann)
    call("POST", f"/projects/{project_id}/review/next", reviewer)
    assert (
        call("POST", f"/projects/{project_id}/tasks/{done}/review", reviewer, {"decision": "approve"}).status
        == 200
    )
    free = queued(project_id, admin, 2)
    # When the queued tasks and then the approved one are requeued by filter
    by_queued = _run_one(
        aws, project_id, admin, {"operation": "requeue", "selection": {"filter": {"status": "queued"}}}
    )
    approved = _run_one(
        aws, project_id, admin, {"operation": "requeue", "selection": {"filter": {"status": "approved"}}}
    )
    # Then the free tasks are done and unchanged; the approved one failed with the reason
    assert by_queued["counts"] == {"done": 2, "failed": 0}
    assert all(_item(project_id, t).status == "queued" for t in free)
    assert approved["counts"] == {"done": 0, "failed": 1}
    assert approved["failures"] == [
        {"task_id": done, "reason": "the task is approved: its workflow has finished with labelling"}
    ]


PREDICTED = [
    {
        "model_version": "m-low",
        "score": 0.4,
        "results": [{"control": "sentiment", "type": "classification", "labels": ["neg"]}],
    },
    {
        "model_version": "m-best",
        "score": 0.9,
        "results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}],
    },
]


def _predicted(project_id: str, admin: Actor, specs: list[list[dict[str, Any]]]) -> list[str]:
    """Tasks with the given predictions, queued by their workflow's Label step."""
    task_ids = new_tasks(
        project_id, admin, [{"data": {"text": f"p{i}"}, "predictions": p} for i, p in enumerate(specs)]
    )
    for task_id in task_ids:
        queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    return task_ids


def test_accept_predictions_stores_the_best_one_and_completes_the_label_step_once(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tasks with predictions (one leased by an annotator, one misfit), one without,
    # one whose workflow has not started, and another project's task
    project_id = project(admin, priority_mode="fifo")
    ann = person("u-ann")
    members(project_id, "annotator", ann)
    misfit = [
        {
            "model_version": "m",
            "score": 0.5,
            "results": [{"control": "nope", "type": "classification", "labels": ["x"]}],
        }
    ]
    leased, good, bad, bare = _predicted(project_id, admin, [PREDICTED, PREDICTED, misfit, []])
    assert lease(project_id, ann)["task"]["task_id"] == leased  # fifo: the head
    (fresh,) = new_tasks(project_id, admin, [{"data": {"text": "new"}, "predictions": PREDICTED}])
    foreign_project = project(admin)
    (foreign,) = _predicted(foreign_project, admin, [PREDICTED])
    # When predictions are accepted, the worker dying once right after storing the first one
    # (before the Label step heard of it)
    real_send = workflow.send_success
    died: list[str] = []

    def send_success(token: str, output: dict[str, Any]) -> None:
        if not died:
            died.append(token)
            raise ConnectionError("the worker lost its connection")  # retried
        real_send(token, output)

    monkeypatch.setattr(workflow, "send_success", send_success)
    monkeypatch.setattr(jobs, "LEASE_SECONDS", -1)
    job = _start(
        project_id,
        admin,
        {
            "operation": "accept_predictions",
            "selection": {"task_ids": [good, leased, bad, bare, fresh, foreign]},
        },
    )
    [message] = _messages(aws)
    with pytest.raises(ConnectionError):
        jobs.process_message(message, lambda: 900.0)
    assert jobs.process_message(message, lambda: 900.0).kind == "succeeded"
    view = _job(project_id, admin, job["job_id"])
    # Then one task is done and every other failed with its reason
    assert died == [f"tok-{good}"]
    assert view["counts"] == {"done": 1, "failed": 5}
    reasons = {f["task_id"]: f["reason"] for f in view["failures"]}
    assert reasons == {
        leased: "the task is leased by an annotator (u-ann)",
        bad: "the annotation does not fit the label configuration: unknown control 'nope'",
        bare: "the task has no predictions",
        fresh: "the task is new, not waiting for labelling",
        foreign: "no such task in this project",
    }
    # And the best prediction is the task's one annotation, marked as accepted from the model
    [annotation] = queue.annotations_of(project_id, good)
    assert (annotation.source, annotation.model_version, annotation.accepted_by) == (
        "prediction",
        "m-best",
        admin.user_id,
    )
    assert annotation.author == "system:predictions"
    assert [r.model_dump(mode="json", exclude_none=True) for r in annotation.results] == PREDICTED[1][
        "results"
    ]
    # And the Label step got it once, asking for review; the task moved on
    assert steps.sent == [
        (
            f"tok-{good}",
            {"annotation_ids": [annotation.annotation_id], "agreement": None, "needs_review": True},
        )
    ]
    item = _item(project_id, good)
    assert (item.status, item.label_token, item.lease_owner) == ("submitted", None, None)
    queue.enter_review(project_id, good, token=f"rev-{good}")
    assert _item(project_id, good).status == "in_review"
    # And the leased task is still ann's to submit; the others and the foreign task are untouched
    assert submit(project_id, leased, ann).status == 200
    assert [_item(project_id, t).status for t in (bad, bare, fresh)] == ["queued", "queued", "new"]
    assert queue.annotations_of(foreign_project, foreign) == []
    # When the same job's message is delivered again
    assert jobs.process_message(message, lambda: 900.0).kind == "skipped"
    # Then nothing more happened, and one audit record covers the job
    assert len(queue.annotations_of(project_id, good)) == 1
    assert len(steps.sent) == 2  # the accepted prediction, and ann's own submit
    [record] = _bulk_audit(project_id, admin, "task.bulk_accept_predictions")
    assert record["counts"] == {"done": 1, "failed": 5}


def test_accept_predictions_by_filter_completes_an_overlap_round(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given overlap 2 and two predicted tasks, one of them labelled by one annotator already
    monkeypatch.setattr(bulk, "CHUNK", 1)
    project_id = project(admin, overlap=2, priority_mode="fifo")
    ann = person("u-ann")
    members(project_id, "annotator", ann)
    first, second = _predicted(project_id, admin, [PREDICTED, PREDICTED])
    assert lease(project_id, ann)["task"]["task_id"] == first
    assert submit(project_id, first, ann).body["status"] == "queued"
    # When the queued tasks' predictions are accepted, the worker crashing after the first chunk
    view = _crash_after_first_chunk_then_rerun(
        aws,
        monkeypatch,
        project_id,
        admin,
        {"operation": "accept_predictions", "selection": {"filter": {"status": "queued"}}},
    )
    # Then both rounds are complete with one accepted prediction each, sent to review
    assert view["counts"] == {"done": 2, "failed": 0}
    for task_id, humans in ((first, 1), (second, 0)):
        annotations = queue.annotations_of(project_id, task_id)
        assert sorted(a.source for a in annotations) == sorted(["prediction"] + ["human"] * humans)
        [outcome] = [o for t, o in steps.sent if t == f"tok-{task_id}"]
        assert sorted(outcome["annotation_ids"]) == sorted(a.annotation_id for a in annotations)
        assert outcome["needs_review"] is True
        assert _item(project_id, task_id).status == "submitted"
