"""Reviewed labels stay reviewed: who may write annotations outside the queue, what exports ship,
archived projects, and the races around managers and deletes (moto in-process, real threads)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import patches
from serval.adapters import annotations as annotation_store
from serval.adapters import dynamo, members, tasks
from serval.domain.access import MemberUpdate
from serval.domain.actor import Actor
from serval.domain.models import Annotation, utcnow
from serval.domain.permissions import ProjectRole
from serval.errors import Conflict
from serval.logic import members as member_logic
from serval.logic import queue
from serval.logic import tasks as task_logic
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import (
    GOOD,
    Workflow,
    lease,
    person,
    project,
    queued,
    steps,
    submit,
)
from tests.integration.queue_helpers import members as join_as
from tests.integration.test_dataset_export import sqs_records
from tests.integration.test_export_fanout import WorkerContext

__all__ = ["steps"]  # the fixture, imported for this module

POS = GOOD
NEG = {"results": [{"control": "sentiment", "type": "classification", "labels": ["neg"]}]}


@pytest.fixture
def fast() -> Iterator[None]:
    """The local stack's moto patches: conditional writes and transactions are atomic."""
    with patches.installed():
        yield


def _annotate(project_id: str, task_id: str, who: Actor, body: dict[str, Any], lead: float = 0.0) -> Any:
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    return call("POST", url, who, body | {"lead_time_s": lead})


def _annotators(project_id: str, admin: Actor) -> dict[str, dict[str, Any]]:
    report = call("GET", f"/projects/{project_id}/annotators", admin)
    assert report.status == 200, report.body
    return {row["user_id"]: row for row in report.body["annotators"]}


def _approved(admin: Actor, overlap: int = 1) -> tuple[str, str, Actor, Actor]:
    """A project whose one task an annotator labelled ``pos`` and a reviewer approved."""
    project_id = project(admin, overlap=overlap)
    (task_id,) = queued(project_id, admin, 1)
    ann, rev = person("u-ann"), person("u-rev", "reviewer")
    join_as(project_id, "annotator", ann)
    join_as(project_id, "reviewer", rev)
    lease(project_id, ann)
    assert submit(project_id, task_id, ann, POS).status == 200
    queue.enter_review(project_id, task_id, token=f"rev-{task_id}")
    assert call("POST", f"/projects/{project_id}/review/next", rev).body["task"]["task_id"] == task_id
    decided = call("POST", f"/projects/{project_id}/tasks/{task_id}/review", rev, {"decision": "approve"})
    assert decided.status == 200, decided.body
    return project_id, task_id, ann, rev


# ---- who may write outside the queue ----------------------------------------------------------


def test_an_annotator_without_a_lease_cannot_write_or_inflate_their_counts(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a queued task, an annotator who labelled one task through the queue, and another annotator
    project_id = project(admin)
    first, second = queued(project_id, admin, 2)
    ann, other = person("u-ann"), person("u-other")
    join_as(project_id, "annotator", ann, other)
    leased = lease(project_id, ann)["task"]["task_id"]
    assert submit(project_id, leased, ann).status == 200
    before = _annotators(project_id, admin)[ann.user_id]
    free = second if leased == first else first

    # When the annotator posts 20 annotations with invented lead times on a task they do not lease
    answers = [_annotate(project_id, free, ann, NEG, lead=3600.0) for _ in range(20)]

    # Then every one is refused with lease_not_held, nothing is stored, and their counts did not move
    assert {(a.status, a.body["error"]["code"]) for a in answers} == {(409, "lease_not_held")}
    assert queue.annotations_of(project_id, free) == []
    assert _annotators(project_id, admin)[ann.user_id] == before
    assert before["annotations"] == 1
    # And the same holds on the task they labelled (no longer leased) and for another annotator
    assert _annotate(project_id, leased, ann, NEG).body["error"]["code"] == "lease_not_held"
    assert _annotate(project_id, free, other, NEG).body["error"]["code"] == "lease_not_held"


def test_a_lease_holder_may_write_a_draft_that_counts_nothing(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given an annotator holding a lease
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann = person("u-ann")
    join_as(project_id, "annotator", ann)
    lease(project_id, ann)

    # When they write annotations through the route while they hold it, then submit
    drafts = [_annotate(project_id, task_id, ann, NEG, lead=3600.0) for _ in range(3)]
    assert submit(project_id, task_id, ann, POS).status == 200

    # Then the drafts are stored, but only the submit counts
    assert [d.status for d in drafts] == [201, 201, 201]
    row = _annotators(project_id, admin)[ann.user_id]
    assert row["annotations"] == 1
    activity = call("GET", f"/projects/{project_id}/activity", admin).body
    assert activity["annotations"] == 1


def test_a_manager_annotates_open_tasks_but_never_closed_ones(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given an approved task and a queued one
    project_id, approved, _, _ = _approved(admin)
    (open_task,) = queued(project_id, admin, 1)
    manager = person("u-mgr", "manager")
    join_as(project_id, "manager", manager)

    # When the manager annotates both, and the task is exported and archived
    on_open = _annotate(project_id, open_task, manager, NEG)
    on_approved = _annotate(project_id, approved, manager, NEG)
    queue.mark_exported(project_id, approved)
    on_exported = _annotate(project_id, approved, admin, NEG)

    # Then the open task takes it (counted for nobody), the closed one refuses with task_closed
    assert on_open.status == 201, on_open.body
    assert manager.user_id not in _annotators(project_id, admin)
    for refused, status in ((on_approved, "approved"), (on_exported, "exported")):
        assert (refused.status, refused.body["error"]["code"]) == (409, "task_closed")
        assert refused.body["error"]["details"]["status"] == status
    assert len(queue.annotations_of(project_id, approved)) == 1


# ---- what exports ship ----------------------------------------------------------------------


def _drain_jobs(aws: Aws) -> None:
    from jobs.handler import handler

    url = aws.env["JOBS_QUEUE_URL"]
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", []):
        response = handler({"Records": sqs_records(messages)}, WorkerContext())  # type: ignore[arg-type]
        assert response["batchItemFailures"] == []
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])


def _exported_labels(aws: Aws, admin: Actor, project_id: str) -> tuple[dict[str, list[str] | None], Any]:
    """Task id -> the exported labels of an approved-only JSONL export, and the job."""
    created = call(
        "POST",
        f"/projects/{project_id}/exports",
        admin,
        {"format": "jsonl", "filters": {"approved_only": True}},
    )
    assert created.status == 202, created.body
    _drain_jobs(aws)
    job = call("GET", f"/projects/{project_id}/exports/{created.body['job_id']}", admin).body
    assert job["status"] == "succeeded", job
    data = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=job["result_key"])["Body"].read()
    labels: dict[str, list[str] | None] = {}
    for line in data.decode().splitlines():
        row = json.loads(line)
        annotation = row["annotation"]
        labels[row["task_id"]] = annotation["results"][0]["labels"] if annotation else None
    return labels, job


def _write_behind_the_route(project_id: str, task_id: str, author: str, labels: list[str]) -> None:
    """An annotation stored after approval by a path that skips the route's checks (the newest)."""
    body = {"results": [{"control": "sentiment", "type": "classification", "labels": labels}]}
    annotation = Annotation.model_validate(
        body
        | {
            "annotation_id": "a_zzzzzzzzzzzz",  # sorts after every generated id: the newest
            "task_id": task_id,
            "project_id": project_id,
            "author": author,
            "lead_time_s": 1.0,
            "label_config_version": 1,
            "created_at": utcnow(),
        }
    )
    annotation_store.create(annotation, Actor.system("tests"), closed=(), holder=None)


@pytest.mark.parametrize("shard_tasks", [None, 1], ids=["one-piece", "fan-out"])
def test_an_annotation_written_after_approval_never_changes_the_export(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch, shard_tasks: int | None
) -> None:
    # Given an approved task labelled pos, and a second approved task (so a fan-out has two shards)
    project_id, task_id, ann, _ = _approved(admin)
    (other,) = queued(project_id, admin, 1)
    lease(project_id, ann)
    assert submit(project_id, other, ann, POS).status == 200
    queue.enter_review(project_id, other, token=f"rev-{other}")
    queue.accept_consensus(project_id, other)  # accepted without review: its round's answer
    if shard_tasks is not None:
        monkeypatch.setenv("EXPORT_SHARD_TASKS", str(shard_tasks))
    assert tasks.get(project_id, task_id).accepted_annotation_id is not None

    # When anyone writes neg on it afterwards: the annotator, another one, a manager through the
    # route, and a newer annotation stored behind the route's back
    second = person("u-second")
    join_as(project_id, "annotator", second)
    refused = [_annotate(project_id, task_id, who, NEG) for who in (ann, second, admin)]
    _write_behind_the_route(project_id, task_id, second.user_id, ["neg"])
    _write_behind_the_route(project_id, other, second.user_id, ["neg"])
    labels, job = _exported_labels(aws, admin, project_id)

    # Then the route refused them, and the export still ships the reviewed pos for both tasks
    assert [r.body["error"]["code"] for r in refused] == ["task_closed"] * 3
    assert labels == {task_id: ["pos"], other: ["pos"]}
    assert job["shards"] == (2 if shard_tasks else None)


def test_exports_ship_the_reviewers_edit_and_the_consensus_answer(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a task a reviewer approved with an edit to neg
    project_id = project(admin, overlap=3, agreement_threshold=0.5)
    edited, agreed = queued(project_id, admin, 2)
    people = [person(f"u-a{i}") for i in range(3)]
    rev = person("u-rev", "reviewer")
    join_as(project_id, "annotator", *people)
    join_as(project_id, "reviewer", rev)
    # (three annotators label both tasks: pos, pos, neg; the majority answer is pos)
    for who, body in zip(people, (POS, POS, NEG), strict=True):
        for _ in range(2):
            task_id = lease(project_id, who)["task"]["task_id"]
            assert submit(project_id, task_id, who, body).status == 200
    queue.enter_review(project_id, edited, token=f"rev-{edited}")
    assert call("POST", f"/projects/{project_id}/review/next", rev).body["task"]["task_id"] == edited
    edit = {"decision": "approve", "results": NEG["results"]}
    assert call("POST", f"/projects/{project_id}/tasks/{edited}/review", rev, edit).status == 200
    # And the other accepted by consensus (agreement 2/3 is above the threshold)
    queue.accept_consensus(project_id, agreed)

    # When the project is exported
    labels, _ = _exported_labels(aws, admin, project_id)

    # Then the edit is shipped for the first, the round's majority answer for the second
    assert labels == {edited: ["neg"], agreed: ["pos"]}


# ---- archived projects ------------------------------------------------------------------------


def test_an_archived_project_takes_no_work_until_it_is_restored(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a project with a leased task, a queued one and a task in review
    project_id = project(admin)
    leased_task, queued_task, reviewed = queued(project_id, admin, 3)
    ann, rev = person("u-ann"), person("u-rev", "reviewer")
    join_as(project_id, "annotator", ann)
    join_as(project_id, "reviewer", rev)
    taken = [lease(project_id, ann)["task"]["task_id"] for _ in range(2)]
    assert submit(project_id, taken[1], ann).status == 200
    queue.enter_review(project_id, taken[1], token=f"rev-{taken[1]}")
    assert call("POST", f"/projects/{project_id}/review/next", rev).body["task"]["task_id"] == taken[1]
    held, free = taken[0], next(t for t in (leased_task, queued_task, reviewed) if t not in taken)

    # When a manager archives it
    assert call("POST", f"/projects/{project_id}/archive", admin).body["status"] == "archived"

    # Then every kind of work answers 409 project_archived
    base = f"/projects/{project_id}"
    attempts = {
        "next": call("POST", f"{base}/next", ann),
        "heartbeat": call("POST", f"{base}/tasks/{held}/heartbeat", ann),
        "submit": submit(project_id, held, ann),
        "annotate": _annotate(project_id, held, ann, POS),
        "manager annotates": _annotate(project_id, free, admin, POS),
        "review next": call("POST", f"{base}/review/next", rev),
        "review": call("POST", f"{base}/tasks/{taken[1]}/review", rev, {"decision": "approve"}),
        "assign": call("POST", f"{base}/tasks/{free}/assign", admin, {"user_id": ann.user_id}),
        "gold": call("PUT", f"{base}/tasks/{free}/gold", admin, POS),
        "create tasks": call("POST", f"{base}/tasks", admin, [{"data": {"text": "x"}}]),
        "patch task": call("PATCH", f"{base}/tasks/{free}", admin, {"priority": 3}),
        "delete task": call("DELETE", f"{base}/tasks/{free}", admin),
        "bulk": call(
            "POST",
            f"{base}/bulk",
            admin,
            {"operation": "tag", "tags": ["t"], "selection": {"task_ids": [free]}},
        ),
        "upload": call("POST", f"{base}/uploads", admin, {"filename": "a.jsonl"}),
    }
    assert {name: (a.status, a.body["error"]["code"]) for name, a in attempts.items()} == {
        name: (409, "project_archived") for name in attempts
    }
    # And nothing changed: the lease is still held, the task in review still waits
    assert tasks.get_item(project_id, held).lease_owner == ann.user_id
    assert tasks.get_item(project_id, taken[1]).status == "in_review"
    # But reading and exporting still work, and the lease may be given back
    assert call("GET", f"{base}/tasks", ann).status == 200
    assert call("POST", f"{base}/exports", admin, {"format": "jsonl"}).status == 202
    assert call("POST", f"{base}/tasks/{held}/release", ann).status == 200

    # When it is restored
    restored = call("POST", f"{base}/restore", admin)

    # Then it is active, audited once, and takes work again (restoring again changes nothing)
    assert (restored.status, restored.body["status"]) == (200, "active")
    assert call("POST", f"{base}/restore", admin).body["status"] == "active"
    audit = call("GET", f"{base}/audit?action=project.restore", admin).body["items"]
    assert [(r["action"], r["before"]["status"], r["after"]["status"]) for r in audit] == [
        ("project.restore", "archived", "active")
    ]
    assert lease(project_id, ann)["task"] is not None


def test_only_a_manager_restores(aws: Aws, admin: Actor) -> None:
    project_id = project(admin)
    ann = person("u-ann")
    join_as(project_id, "annotator", ann)
    call("POST", f"/projects/{project_id}/archive", admin)
    refused = call("POST", f"/projects/{project_id}/restore", ann)
    assert (refused.status, refused.body["error"]["code"]) == (403, "forbidden")
    assert call("GET", f"/projects/{project_id}", ann).body["status"] == "archived"


# ---- races ------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["remove", "demote"])
def test_two_managers_removing_each_other_at_once_leave_one(
    fast: None, aws: Aws, admin: Actor, change: str
) -> None:
    # Given a project with exactly two managers (its creator, an admin, leaves it to them)
    project_id = project(admin)
    a, b = person("u-mgr-a", "manager"), person("u-mgr-b", "manager")
    join_as(project_id, "manager", a, b)
    assert call("DELETE", f"/projects/{project_id}/members/{admin.user_id}", a).status == 204
    barrier = threading.Barrier(2)
    waited: set[int] = set()
    outcomes: dict[str, str] = {}
    read = members.managers

    def managers_then_wait(pid: str) -> list[str]:
        found = read(pid)
        if threading.get_ident() not in waited:  # both have read two managers before either commits
            waited.add(threading.get_ident())
            barrier.wait(timeout=10)
        return found

    def act(who: Actor, target: Actor) -> None:
        # (through the logic: the API's resolver serves one request at a time, as a Lambda container does)
        try:
            if change == "remove":
                member_logic.remove(project_id, target.user_id, who)
            else:
                member_logic.update(project_id, target.user_id, MemberUpdate(role=ProjectRole.ANNOTATOR), who)
            outcomes[who.user_id] = "changed"
        except Conflict as exc:
            outcomes[who.user_id] = str((exc.details or {}).get("code", exc.code))

    # When each removes (or demotes) the other at the same moment, on real threads
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(members, "managers", managers_then_wait)
        threads = [threading.Thread(target=act, args=pair) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # Then exactly one change went through, the other was refused as the last manager's, and one remains
    assert sorted(outcomes.values()) == ["changed", "last_manager"]
    assert len(members.managers(project_id)) == 1


def test_an_annotation_committed_during_a_delete_is_deleted_with_its_task(
    fast: None, aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a queued task and a delete that pauses between reading the task's annotations and
    # committing (an injected interleaving)
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    queried, annotated = threading.Event(), threading.Event()
    deleting = threading.current_thread()
    commit = dynamo.Tx.commit
    pauses = iter([True])

    def paused_commit(self: dynamo.Tx, *args: Any, **kwargs: Any) -> None:
        deleting_now = threading.current_thread() is deleting and any("Delete" in a for a in self.actions)
        if deleting_now and next(pauses, False):
            queried.set()
            assert annotated.wait(timeout=10)
        commit(self, *args, **kwargs)

    def annotate() -> None:
        assert queried.wait(timeout=10)
        assert _annotate(project_id, task_id, admin, POS).status == 201
        annotated.set()

    # When a manager annotates it on another thread while the delete is in flight
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dynamo.Tx, "commit", paused_commit)
        writer = threading.Thread(target=annotate)
        writer.start()
        task_logic.delete(project_id, task_id, admin)
        writer.join()

    # Then the delete retried and took the annotation along: no orphan is left
    m = dynamo.tasks()
    left = list(m.Item.query(f"PROJECT#{project_id}", m.Item.SK.startswith(f"ANNOTATION#{task_id}#")))
    assert left == []
    with pytest.raises(Exception, match="not found"):
        tasks.get_item(project_id, task_id)


# ---- gold tasks look like any task --------------------------------------------------------------


def _listed(project_id: str, who: Actor, status: str) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        url = f"/projects/{project_id}/tasks?status={status}&limit=1" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = call("GET", url, who)
        assert page.status == 200, page.body
        found += [t["task_id"] for t in page.body["items"]]
        cursor = page.body["next_cursor"]
        if not cursor:
            return found


def test_a_gold_lease_looks_like_any_lease_to_annotators(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a project that offers gold first, one gold task and two ordinary queued ones
    project_id = project(admin, gold_rate=1.0, priority_mode="fifo")
    gold_id, plain_a, plain_b = queued(project_id, admin, 3)
    assert call("PUT", f"/projects/{project_id}/tasks/{gold_id}/gold", admin, POS).status == 200
    ann, peer = person("u-ann"), person("u-peer")
    join_as(project_id, "annotator", ann, peer)

    # When nobody leases yet, an annotator lists the queued tasks (one per page)
    # Then the gold task is listed with the others, as queued
    assert sorted(_listed(project_id, peer, "queued")) == sorted([gold_id, plain_a, plain_b])

    # When one annotator leases the gold task and the other an ordinary one
    gold_lease = lease(project_id, ann)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("random.random", lambda: 0.99)  # past the gold rate: an ordinary lease
        plain_lease = lease(project_id, peer)
    assert gold_lease["task"]["task_id"] == gold_id
    assert plain_lease["task"]["task_id"] == plain_a

    # Then both answers have the same shape and status, and the task reads as leased
    assert gold_lease["task"].keys() == plain_lease["task"].keys()
    assert gold_lease["task"]["status"] == plain_lease["task"]["status"] == "leased"
    assert call("GET", f"/projects/{project_id}/tasks/{gold_id}", peer).body["status"] == "leased"
    # And the listings put it where a leased task is
    assert sorted(_listed(project_id, peer, "leased")) == sorted([gold_id, plain_a])
    assert _listed(project_id, peer, "queued") == [plain_b]

    # When the gold answer is submitted, it is scored and the task lists as queued again
    assert submit(project_id, gold_id, ann, POS).status == 200
    assert sorted(_listed(project_id, peer, "queued")) == sorted([gold_id, plain_b])
    assert _annotators(project_id, admin)[ann.user_id]["gold_accuracy"] == 1.0
