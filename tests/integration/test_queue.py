"""The labelling queue on moto: leases, contention, expiry, overlap, priority modes, submit."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bench.metering import metered
from infra.local import patches
from serval.adapters import dynamo, tasks
from serval.domain.actor import Actor
from serval.domain.models import AnnotationCreate
from serval.logic import queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import (
    GOOD,
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


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local stack's moto patches: per-partition queries, atomic conditional writes."""
    with patches.installed():
        yield


def _status(project_id: str, task_id: str) -> str:
    return str(tasks.get_item(project_id, task_id).status)


def test_next_leases_the_head_and_an_empty_queue_answers_null(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a project with two queued tasks and an annotator
    project_id = project(admin, priority_mode="fifo")
    first, second = queued(project_id, admin, 2)
    ann = person("u-ann")
    members(project_id, "annotator", ann)

    # When they lease three times
    leases = [lease(project_id, ann) for _ in range(3)]

    # Then they get the oldest task, then the next, then nothing
    assert [(lz["task"] or {}).get("task_id") for lz in leases] == [first, second, None]
    assert leases[0]["lease_until"] >= int(time.time()) + 1700
    assert _status(project_id, first) == "leased"
    # And the counters follow, and no token leaks into the answer
    counts = dynamo.read_counters(project_id)
    assert (counts["leased"], counts["queued"], counts["new"]) == (2, 0, 0)
    assert "tok-" not in str(leases)


def test_thirty_two_annotators_drain_a_thousand_tasks_without_sharing_one(
    fast: None, aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given 1,000 queued tasks and 32 annotators
    project_id = project(admin, priority_mode="priority")
    task_ids = queued(project_id, admin, 1000)
    people = [person(f"u-ann-{i:02d}") for i in range(32)]
    members(project_id, "annotator", *people)
    holders: dict[str, str] = {}
    lock = threading.Lock()
    leased: list[str] = []
    errors: list[Any] = []

    # When each leases and submits until the queue is empty, on real threads (through the logic:
    # the API's Powertools resolver serves one request at a time, as one Lambda container does)
    def work(who: Actor) -> None:
        try:
            while True:
                task = queue.next_task(project_id, who).task
                if task is None:
                    return
                with lock:
                    if task.task_id in holders:
                        errors.append(f"{task.task_id} leased to {who.user_id} and {holders[task.task_id]}")
                    holders[task.task_id] = who.user_id
                    leased.append(task.task_id)
                queue.submit(project_id, task.task_id, AnnotationCreate.model_validate(GOOD), who)
                with lock:
                    holders.pop(task.task_id, None)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(who,)) for who in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then no task was held twice at once, every task was leased exactly once, and all were submitted
    assert errors == []
    assert sorted(leased) == sorted(task_ids)
    counts = dynamo.read_counters(project_id)
    assert (counts["submitted"], counts["queued"], counts["leased"]) == (1000, 0, 0)
    # And every annotation is there, with every Label step completed once
    assert sum(len(queue.annotations_of(project_id, t)) for t in task_ids) == 1000
    assert len({token for token, _ in steps.sent}) == 1000


def test_an_expired_lease_returns_the_task_to_the_queue(
    aws: Aws, admin: Actor, steps: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task leased by a first annotator, whose lease then runs out
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    first, second = person("u-first"), person("u-second")
    members(project_id, "annotator", first, second)
    assert lease(project_id, first)["task"]["task_id"] == task_id
    assert lease(project_id, second)["task"] is None
    later = time.time() + 1801
    monkeypatch.setattr(queue.time, "time", lambda: later)

    # When a second annotator asks for work
    taken = lease(project_id, second)

    # Then they get the task, and the first one's late heartbeat and submit are refused
    assert taken["task"]["task_id"] == task_id
    assert call("POST", f"/projects/{project_id}/tasks/{task_id}/heartbeat", first).status == 409
    refused = submit(project_id, task_id, first)
    assert (refused.status, refused.body["error"]["code"]) == (409, "lease_not_held")
    assert submit(project_id, task_id, second).status == 200
    assert dynamo.read_counters(project_id)["leased"] == 0


def test_overlap_two_gives_two_distinct_annotators_per_task(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given an overlap-2 project with 3 tasks and 3 annotators
    project_id = project(admin, overlap=2)
    task_ids = queued(project_id, admin, 3)
    people = [person(f"u-o{i}") for i in range(3)]
    members(project_id, "annotator", *people)

    # When they lease and submit round-robin until nothing is left
    idle = 0
    while idle < len(people):
        idle = 0
        for who in people:
            got = lease(project_id, who)["task"]
            if got is None:
                idle += 1
                continue
            assert submit(project_id, got["task_id"], who).status == 200

    # Then each task has exactly two annotations by two different people, and its step completed once
    for task_id in task_ids:
        authors = [a.author for a in queue.annotations_of(project_id, task_id)]
        assert len(authors) == 2 and len(set(authors)) == 2
        assert _status(project_id, task_id) == "submitted"
    by_token = {token: out for token, out in steps.sent}
    assert set(by_token) == {f"tok-{t}" for t in task_ids}
    assert all(len(out["annotation_ids"]) == 2 for out in by_token.values())


@pytest.mark.parametrize("mode", ["priority", "fifo", "least_confident", "random"])
def test_each_priority_mode_orders_the_queue_as_documented(
    aws: Aws, admin: Actor, steps: Workflow, mode: str
) -> None:
    # Given tasks with priorities and prediction scores, queued in creation order
    project_id = project(admin, priority_mode=mode)
    specs = [
        {"data": {"text": "a"}, "priority": 1, "predictions": [{"model_version": "m", "score": 0.9}]},
        {"data": {"text": "b"}, "priority": 5, "predictions": [{"model_version": "m", "score": 0.2}]},
        {"data": {"text": "c"}, "priority": 3, "predictions": [{"model_version": "m", "score": 0.5}]},
        {"data": {"text": "d"}, "priority": 5, "predictions": [{"model_version": "m", "score": 0.7}]},
    ]
    ids = []
    for spec in specs:  # one call each: distinct creation times
        ids += new_tasks(project_id, admin, [spec])
        time.sleep(0.002)
    for task_id in ids:
        queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    ann = person("u-order")
    members(project_id, "annotator", ann)

    # When one annotator leases them all
    order = [lease(project_id, ann)["task"]["task_id"] for _ in ids]

    # Then the order is the mode's
    a, b, c, d = ids
    expected = {
        "priority": [b, d, c, a],  # highest priority first, then oldest
        "fifo": [a, b, c, d],
        "least_confident": [b, c, d, a],  # lowest score first
    }
    if mode == "random":
        assert sorted(order) == sorted(ids)
    else:
        assert order == expected[mode]


def test_release_heartbeat_and_skip(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given one queued task and two annotators
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann, other = person("u-a"), person("u-b")
    members(project_id, "annotator", ann, other)
    base = f"/projects/{project_id}/tasks/{task_id}"

    # When the first leases it, heartbeats and releases it
    first = lease(project_id, ann)
    beat = call("POST", base + "/heartbeat", ann)
    assert beat.status == 200 and beat.body["lease_until"] >= first["lease_until"]
    assert call("POST", base + "/heartbeat", other).status == 409  # not theirs
    released = call("POST", base + "/release", ann)
    # Then it is queued again and the same annotator can take it again
    assert released.status == 200 and released.body["status"] == "queued"
    assert call("POST", base + "/release", ann).status == 409

    # When they skip it
    assert lease(project_id, ann)["task"]["task_id"] == task_id
    assert call("POST", base + "/skip", ann).status == 200

    # Then it is never offered to them again, but the other annotator gets it
    assert lease(project_id, ann)["task"] is None
    assert lease(project_id, other)["task"]["task_id"] == task_id
    counts = dynamo.read_counters(project_id)
    assert (counts["queued"], counts["leased"]) == (0, 1)


def test_an_assigned_task_goes_only_to_its_assignee(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a queued task, two annotators and a viewer
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann, chosen, viewer = person("u-x"), person("u-chosen"), person("u-viewer", "reviewer")
    members(project_id, "annotator", ann, chosen)
    members(project_id, "viewer", viewer)
    url = f"/projects/{project_id}/tasks/{task_id}/assign"

    # When the manager assigns it to one annotator (a viewer cannot be chosen; an annotator cannot assign)
    assert call("POST", url, admin, {"user_id": viewer.user_id}).status == 422
    assert call("POST", url, admin, {"user_id": "u-nobody"}).status == 422
    assert call("POST", url, ann, {"user_id": ann.user_id}).status == 403
    assigned = call("POST", url, admin, {"user_id": chosen.user_id})
    assert assigned.status == 200, assigned.body

    # Then only the assignee is offered it
    assert lease(project_id, ann)["task"] is None
    assert lease(project_id, chosen)["task"]["task_id"] == task_id


def test_submit_validates_against_the_label_configuration(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a leased text task "hello world 0"
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann = person("u-val")
    members(project_id, "annotator", ann)
    lease(project_id, ann)

    # When the annotator submits a wrong class, or a span out of the text's range
    wrong_class = {"results": [{"control": "sentiment", "type": "classification", "labels": ["meh"]}]}
    out_of_range = {
        "results": [{"control": "ents", "type": "ner", "labels": ["PER"], "start": 5, "end": 500}]
    }
    answers = [submit(project_id, task_id, ann, body) for body in (wrong_class, out_of_range)]

    # Then both are 422, and the lease is still theirs
    assert [a.status for a in answers] == [422, 422], [a.body for a in answers]
    assert _status(project_id, task_id) == "leased"
    assert queue.annotations_of(project_id, task_id) == []
    assert submit(project_id, task_id, ann, GOOD).status == 200


def test_submit_refuses_regions_that_cover_nothing(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a leased image task under a box and a polygon control
    labels = {
        "controls": [
            {"name": "objects", "type": "bbox", "classes": [{"name": "car"}]},
            {"name": "areas", "type": "polygon", "classes": [{"name": "road"}]},
        ]
    }
    response = call(
        "POST", "/projects", admin, {"name": "G", "media_types": ["image"], "label_config": labels}
    )
    project_id = response.body["project_id"]
    (task_id,) = new_tasks(project_id, admin, [{"data": {"image": "frames/0001.png"}}])
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    ann = person("u-geo")
    members(project_id, "annotator", ann)
    lease(project_id, ann)
    box = {"label": "car", "x": 0.2, "y": 0.2, "w": 0.1, "h": 0.1}

    def boxes(*items: dict[str, Any]) -> dict[str, Any]:
        return {"results": [{"control": "objects", "type": "bbox", "boxes": list(items)}]}

    flat = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
    line = {
        "results": [{"control": "areas", "type": "polygon", "polygons": [{"label": "road", "points": flat}]}]
    }

    # When they submit a zero-size box, a zero-width one, and a polygon on one line
    answers = [
        submit(project_id, task_id, ann, b)
        for b in (boxes(box | {"w": 0, "h": 0}), boxes(box | {"w": 0}), line)
    ]

    # Then each is a 422 that names the region, nothing is written, and a real box is accepted
    assert [a.status for a in answers] == [422, 422, 422], [a.body for a in answers]
    assert all("no area" in str(a.body["error"]["details"]) for a in answers)
    assert queue.annotations_of(project_id, task_id) == []
    assert submit(project_id, task_id, ann, boxes(box)).status == 200


def test_a_retried_submit_does_not_write_twice(aws: Aws, admin: Actor, steps: Workflow) -> None:
    # Given a leased task, submitted once
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)
    ann = person("u-retry")
    members(project_id, "annotator", ann)
    lease(project_id, ann)
    with metered() as calls:
        assert (
            queue.submit(project_id, task_id, AnnotationCreate.model_validate(GOOD), ann).status
            == "submitted"
        )
    # (the submit read the project and the task once each, then wrote one transaction, completed
    # the Label step and cleared its token)
    assert calls.calls == {
        "dynamodb:GetItem": 2,
        "dynamodb:TransactWriteItems": 1,
        "dynamodb:UpdateItem": 1,
    }, calls.calls

    # When the same submit is retried
    retried = submit(project_id, task_id, ann)

    # Then it is refused and nothing more is written
    assert (retried.status, retried.body["error"]["code"]) == (409, "lease_not_held")
    assert len(queue.annotations_of(project_id, task_id)) == 1
    assert [t for t, _ in steps.sent] == [f"tok-{task_id}"]
    assert tasks.get_item(project_id, task_id).label_token is None
    assert dynamo.read_counters(project_id)["submitted"] == 1


def test_enter_label_is_idempotent_and_patch_keeps_the_workflow_attributes(
    aws: Aws, admin: Actor, steps: Workflow
) -> None:
    # Given a queued task
    project_id = project(admin)
    (task_id,) = queued(project_id, admin, 1)

    # When the Label step is redelivered, and a manager patches the task
    queue.enter_label(project_id, task_id, token=f"tok-{task_id}", rework=0)
    patched = call("PATCH", f"/projects/{project_id}/tasks/{task_id}", admin, {"priority": 7, "tags": ["x"]})

    # Then the task is queued once, and keeps its token and queue position
    assert patched.status == 200, patched.body
    item = tasks.get_item(project_id, task_id)
    assert (item.status, item.label_token, item.priority) == ("queued", f"tok-{task_id}", 7)
    assert item.queue_key == item.GSI1SK
    assert dynamo.read_counters(project_id)["queued"] == 1
    assert Counter(dynamo.read_counters(project_id).values())[1] == 1
