"""The reconciler, proven by fault injection on moto's Step Functions, run for real.

Each path below (submit, review, requeue from review, accept a prediction) is driven from a
fresh task whose execution waits in its step, with a fault at every AWS call the operation
makes, of every kind (:mod:`tests.faults`): a throttle or a service error after botocore's
retries, a timeout whose request was applied, or the function crashing right after the call.
A careless client then retries once. The reconciler then runs until nothing is pending, and the
task must have reached the state the operation promised, with nothing lost and nothing doubled.
A second run must repair nothing. The figure is written to ``test-artifacts/faults.json``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local import patches
from serval.adapters import dynamo, tasks, window
from serval.domain import executions
from serval.domain.actor import Actor
from serval.domain.handoffs import GRACE_S, Repair
from serval.logic import projects as projects_logic
from serval.logic import queue, reconcile, stats, workflow
from serval.settings import settings
from tests.faults import Crash, Exploration, Fault, Faults, explore, injected
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import Aws
from tests.integration.queue_helpers import GOOD, lease, members, new_tasks, person, project, submit
from tests.integration.test_resume import _eventually
from tests.integration.test_resume import _restart as restart

ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults.json"
PREDICTED = [
    {
        "model_version": "m-best",
        "score": 0.9,
        "results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}],
    }
]


@pytest.fixture
def machine(aws: Aws) -> Iterator[Any]:
    """moto's Step Functions with the local stack's Lambda runtime (workflow steps in-process)."""
    with patches.installed():
        yield boto3.client("stepfunctions", region_name="us-east-1")


@pytest.fixture
def faults(machine: Any) -> Iterator[Faults]:
    with injected() as armed:
        yield armed


def _running(sfn: Any, task_id: str) -> list[str]:
    listed = sfn.list_executions(stateMachineArn=settings().STATE_MACHINE_ARN, statusFilter="RUNNING")
    return sorted(e["name"] for e in listed["executions"] if e["name"].startswith(task_id))


def _starter(aws: Aws) -> int:
    """What the starter's poller does: hand it the executions queue's messages (resume requests
    and refills), and delete them once handled."""
    from starter.handler import handler

    url, handled = settings().EXECUTIONS_QUEUE_URL, 0
    while True:
        got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return handled
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
            for m in got
        ]
        result = handler({"Records": records}, LambdaContextStub(function_name="serval-local-starter"))
        assert result == {"batchItemFailures": []}
        for m in got:
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        handled += len(got)


class Clock:
    """The reconciler's view of time: far enough ahead that every handoff is overdue, moved on
    past each postponement."""

    def __init__(self) -> None:
        self.now = int(time.time()) + 2 * GRACE_S

    def tick(self) -> int:
        self.now += 2 * GRACE_S
        return self.now


def _reconcile_until(
    aws: Aws, what: str, settled: Callable[[], bool], clock: Clock
) -> list[reconcile.Report]:
    """Run the reconciler (and the starter behind it) until ``settled``; then a run repairs nothing."""
    reports: list[reconcile.Report] = []
    for _ in range(4):
        if settled():
            break
        reports.append(reconcile.run(now=clock.tick()))
        _starter(aws)
        try:
            _eventually(what, settled, timeout_s=10)
        except AssertionError:
            continue
    assert settled(), f"not repaired: {what} ({[r.as_dict() for r in reports]})"
    again = reconcile.run(now=clock.tick())
    assert sum(again.repairs.values()) == 0, f"a second run repaired {again.as_dict()}"
    return reports


def _careless(faults: Faults, fault: Fault | None, operation: Callable[[], Any]) -> Any:
    """Run ``operation`` with ``fault`` armed; on a crash, an exception, a 429 or a 5xx answer,
    retry it once unarmed, as a client that only knows it got no answer. Returns the last answer
    (or the retry's exception)."""
    faults.arm(fault)
    try:
        answer = operation()
    except (Crash, Exception):
        answer = None
    finally:
        faults.disarm()
    if answer is None or getattr(answer, "status", 200) in (429, *range(500, 600)):
        try:
            answer = operation()
        except Exception as exc:
            return exc
    return answer


def _item(project_id: str, task_id: str) -> Any:
    return tasks.get_item(project_id, task_id)


def _waiting(project_id: str, task_id: str, attribute: str) -> Any:
    return _eventually(f"{attribute} of {task_id}", lambda: getattr(_item(project_id, task_id), attribute))


class Setup:
    """A fresh project with one task whose execution waits in Label; people to work it."""

    def __init__(self, admin: Actor, *, predictions: bool = False) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.admin = admin
        self.ann = person(f"u-ann-{suffix}")
        self.reviewer = person(f"u-rev-{suffix}", "reviewer")
        self.project_id = project(admin, max_rework_rounds=1)
        members(self.project_id, "annotator", self.ann)
        members(self.project_id, "reviewer", self.reviewer)
        spec: dict[str, Any] = {"data": {"text": "hello"}}
        if predictions:
            spec["predictions"] = PREDICTED
        (self.task_id,) = new_tasks(self.project_id, admin, [spec])
        assert workflow.start(executions.StartRequest(self.project_id, self.task_id)) == 1
        _waiting(self.project_id, self.task_id, "label_token")

    def item(self) -> Any:
        return _item(self.project_id, self.task_id)

    def in_review(self) -> None:
        assert lease(self.project_id, self.ann)["task"]["task_id"] == self.task_id
        assert submit(self.project_id, self.task_id, self.ann).status == 200
        _waiting(self.project_id, self.task_id, "review_token")

    def review_lease(self) -> None:
        taken = call("POST", f"/projects/{self.project_id}/review/next", self.reviewer)
        assert taken.status == 200 and taken.body["task"]["task_id"] == self.task_id, taken.body

    def settled_in(self, status: str, token: str | None) -> Callable[[], bool]:
        def check() -> bool:
            item = self.item()
            return bool(
                item.status == status and item.handoff is None and (token is None or getattr(item, token))
            )

        return check

    def counters(self) -> dict[str, int]:
        return {s: n for s, n in dynamo.read_project_counters(self.project_id).by_status.items() if n}


def _report(found: Exploration) -> None:
    figures = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    figures[found.path] = {
        "tried": found.total,
        "converged": sum(found.converged.values()),
        "lost": len(found.lost),
        "by_kind": dict(found.tried),
        "operations": sorted(found.operations),
    }
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(
        f"{found.path}: {found.total} fault points, {sum(found.converged.values())} converged, {len(found.lost)} lost"
    )


def _assert_nothing_lost(found: Exploration, at_least: int) -> None:
    _report(found)
    assert found.lost == []
    assert found.total >= at_least, found
    assert {"TransactWriteItems", "SendTaskSuccess"} <= found.operations


def test_a_submit_that_fails_anywhere_still_reaches_review_once(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    clock = Clock()

    def scenario(fault: Fault | None) -> None:
        # Given a task leased by its annotator, waiting in Label
        s = Setup(admin)
        assert lease(s.project_id, s.ann)["task"]["task_id"] == s.task_id
        # When the submit meets the fault, and the client retries once if it got no answer
        answer = _careless(faults, fault, lambda: submit(s.project_id, s.task_id, s.ann))
        # Then the retry was either the submit or refused as already done
        assert getattr(answer, "status", None) in (200, 409), answer
        # And after the reconciler the execution waits in Review with the one annotation
        _reconcile_until(aws, "the task in review", s.settled_in("in_review", "review_token"), clock)
        assert len(queue.annotations_of(s.project_id, s.task_id)) == 1
        assert s.counters() == {"in_review": 1}
        assert _running(machine, s.task_id) == [
            executions.current_execution(s.task_id, s.item().execution_name)
        ]

    _assert_nothing_lost(explore("submit", faults, scenario), at_least=8)


def test_a_review_decision_that_fails_anywhere_still_exports_the_task_once(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    clock = Clock()

    def scenario(fault: Fault | None) -> None:
        # Given a task in review, leased by a reviewer
        s = Setup(admin)
        s.in_review()
        s.review_lease()
        # When the approval meets the fault, and the client retries once
        decide = f"/projects/{s.project_id}/tasks/{s.task_id}/review"
        answer = _careless(faults, fault, lambda: call("POST", decide, s.reviewer, {"decision": "approve"}))
        assert getattr(answer, "status", None) in (200, 409), answer
        # Then after the reconciler the task is exported, approved once, and its execution ended
        _reconcile_until(aws, "the task exported", s.settled_in("exported", None), clock)
        review = stats.project_stats(s.project_id, None, None).review
        assert (review.approved, review.rejected) == (1, 0)
        assert s.counters() == {"exported": 1}
        _eventually("the execution to end", lambda: _running(machine, s.task_id) == [])

    _assert_nothing_lost(explore("review", faults, scenario), at_least=8)


def test_a_requeue_from_review_that_fails_anywhere_still_queues_the_task_once(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    clock = Clock()
    manager = person("u-manager", "manager")

    def scenario(fault: Fault | None) -> None:
        # Given a task in review
        s = Setup(admin)
        members(s.project_id, "manager", manager)
        s.in_review()
        first_label = s.item().label_token
        # When a manager's requeue meets the fault, and the bulk job's retry runs it again
        outcome = _careless(faults, fault, lambda: queue.requeue(s.project_id, s.task_id, manager))
        assert not isinstance(outcome, Exception), outcome
        # Then after the reconciler the task is back in the labelling queue, free for anyone
        _reconcile_until(aws, "the task queued", s.settled_in("queued", "label_token"), clock)
        item = s.item()
        assert item.label_token != first_label and item.lease_owner is None and item.review_token is None
        assert s.counters() == {"queued": 1}
        assert _running(machine, s.task_id) == [executions.current_execution(s.task_id, item.execution_name)]
        # And another annotator gets it from /next
        other = person(f"u-other-{s.task_id[-6:]}")
        members(s.project_id, "annotator", other)
        assert lease(s.project_id, other)["task"]["task_id"] == s.task_id

    _assert_nothing_lost(explore("requeue", faults, scenario), at_least=4)


def test_an_accepted_prediction_that_fails_anywhere_reaches_review_with_one_annotation(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    clock = Clock()

    def scenario(fault: Fault | None) -> None:
        # Given a task with a prediction, waiting in Label
        s = Setup(admin, predictions=True)
        active = projects_logic.active(s.project_id)
        annotation_id = f"a-{s.task_id}"
        # When accepting it meets the fault, and the bulk job's retry runs it again (same id)
        outcome = _careless(
            faults, fault, lambda: queue.accept_prediction(active, s.task_id, annotation_id, admin.user_id)
        )
        assert not isinstance(outcome, Exception), outcome
        # Then after the reconciler the task waits in Review with exactly that annotation
        _reconcile_until(aws, "the task in review", s.settled_in("in_review", "review_token"), clock)
        [annotation] = queue.annotations_of(s.project_id, s.task_id)
        assert (annotation.annotation_id, annotation.source) == (annotation_id, "prediction")
        assert s.counters() == {"in_review": 1}

    _assert_nothing_lost(explore("accept_prediction", faults, scenario), at_least=4)


def test_pending_repairs_show_in_stats_until_the_reconciler_delivers_them(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    # Given a submit whose function crashed right after its commit
    s = Setup(admin)
    assert lease(s.project_id, s.ann)["task"]["task_id"] == s.task_id
    faults.arm(None)
    submit(s.project_id, s.task_id, s.ann)
    commit = faults.calls.index("TransactWriteItems") + 1
    faults.disarm()
    s2 = Setup(admin)
    assert lease(s2.project_id, s2.ann)["task"]["task_id"] == s2.task_id
    faults.arm(Fault("crash", commit))
    with pytest.raises(Crash):
        submit(s2.project_id, s2.task_id, s2.ann)
    faults.disarm()
    assert faults.fired == "TransactWriteItems"
    # Then the task is submitted, its handoff waits in the outbox, and /stats counts it once overdue
    assert s2.item().status == "submitted" and s2.item().handoff is not None
    assert reconcile.pending(s2.project_id) == 0  # within its grace period
    later = int(time.time()) + GRACE_S + 1
    assert reconcile.pending(s2.project_id, now=later) == 1
    # When the reconciler runs
    report = reconcile.run(now=later)
    # Then it delivered that handoff (and nothing else), audited it, and the task moved on
    assert report.repairs == {Repair.DELIVERED: 1}
    _eventually("review", s2.settled_in("in_review", "review_token"))
    assert reconcile.pending(s2.project_id, now=later) == 0
    body = call("GET", f"/projects/{s2.project_id}/stats", admin).body
    assert body["pending_repairs"] == {"handoffs": 0}
    history = call("GET", f"/projects/{s2.project_id}/tasks/{s2.task_id}/history", admin).body
    repairs = [r for r in history["items"] if r["action"] == "task.repair"]
    assert [(r["actor_id"], r["after"]["repair"]) for r in repairs] == [("system:reconciler", "delivered")]


def test_a_lost_execution_is_re_created_and_then_given_the_result(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    # Given a submit committed while its execution was gone (lost, as over a local restart)
    s = Setup(admin)
    assert lease(s.project_id, s.ann)["task"]["task_id"] == s.task_id
    restart(machine)
    answer = submit(s.project_id, s.task_id, s.ann)
    assert (answer.status, answer.body["error"]["code"]) == (409, "task_token_invalid")
    assert s.item().status == "submitted" and s.item().handoff is not None
    clock = Clock()
    # When the reconciler runs: the first run asks for a new execution, a later one hands it the result
    reports = _reconcile_until(aws, "review", s.settled_in("in_review", "review_token"), clock)
    # Then the new execution took the wait over and got the result: the task is in review
    assert [r.repairs for r in reports] == [{Repair.RESUMED: 1}, {Repair.DELIVERED: 1}]
    assert _running(machine, s.task_id) == [f"{s.task_id}-r1"]
    assert len(queue.annotations_of(s.project_id, s.task_id)) == 1


def test_a_requeue_whose_review_step_was_lost_is_finished_by_the_reconciler(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    # Given a task in review whose execution was lost
    s = Setup(admin)
    manager = person("u-manager", "manager")
    members(s.project_id, "manager", manager)
    s.in_review()
    restart(machine)
    # When a manager requeues it: the Review step cannot take the decision
    queue.requeue(s.project_id, s.task_id, manager)
    held = s.item()
    assert (held.status, held.lease_owner, held.handoff is not None) == (
        "in_review",
        queue.REQUEUE_HOLDER,
        True,
    )
    # Then the reconciler has a new execution take the Review wait over, hands it the requeue,
    # and the task is back in the labelling queue, free for anyone
    reports = _reconcile_until(aws, "the task queued", s.settled_in("queued", "label_token"), Clock())
    assert [r.repairs for r in reports] == [{Repair.RESUMED: 1}, {Repair.DELIVERED: 1}]
    assert (s.item().lease_owner, _running(machine, s.task_id)) == (None, [f"{s.task_id}-r1"])


def test_a_task_left_waiting_by_a_dead_execution_gets_a_new_one(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    # Given a task queued for labelling whose execution was lost (no result pending anywhere)
    s = Setup(admin)
    first = s.item().label_token
    restart(machine)
    # When the reconciler runs
    reports = _reconcile_until(
        aws,
        "a new Label token",
        lambda: s.item().label_token not in (None, first) and bool(_running(machine, s.task_id)),
        Clock(),
    )
    # Then it asked for a new execution once, which took the Label wait over
    assert [r.repairs for r in reports] == [{Repair.EXECUTION_RESUMED: 1}]
    assert _running(machine, s.task_id) == [f"{s.task_id}-r1"]
    # And the annotator's work reaches review through it
    assert lease(s.project_id, s.ann)["task"]["task_id"] == s.task_id
    assert submit(s.project_id, s.task_id, s.ann).status == 200
    _eventually("review", s.settled_in("in_review", "review_token"))


def test_an_execution_whose_task_was_deleted_is_stopped(
    aws: Aws, admin: Actor, machine: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task waiting in Label, deleted while Step Functions refused to end its wait
    s = Setup(admin)
    url = f"/projects/{s.project_id}/tasks/{s.task_id}"
    answer = _careless(faults, Fault("throttle", 1, "SendTaskFailure"), lambda: call("DELETE", url, admin))
    assert faults.fired == "SendTaskFailure"
    assert getattr(answer, "status", None) in (204, 404), answer
    assert _running(machine, s.task_id) == [s.task_id]
    # When the reconciler runs (the execution is old enough not to be a fresh re-creation)
    monkeypatch.setattr(reconcile, "ORPHAN_AGE_S", -1)
    report = reconcile.run(now=Clock().tick())
    # Then it stopped that execution, and says why in the task's audit trail
    assert report.repairs == {Repair.EXECUTION_STOPPED: 1}
    _eventually("the execution to stop", lambda: _running(machine, s.task_id) == [])
    arn = f"{settings().STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:{s.task_id}"
    assert machine.describe_execution(executionArn=arn)["status"] == "ABORTED"
    assert sum(reconcile.run(now=Clock().tick()).repairs.values()) == 0
    records = call(
        "GET", f"/projects/{s.project_id}/audit?target_type=task&target_id={s.task_id}", admin
    ).body["items"]
    stopped = [r["after"] for r in records if r["action"] == "task.repair"]
    assert stopped == [
        {"repair": "execution_stopped", "execution": s.task_id, "reason": "the task was deleted"}
    ]


def test_a_gold_task_whose_paused_execution_was_lost_gets_a_new_one(
    aws: Aws, admin: Actor, machine: Any, faults: Faults
) -> None:
    # Given a gold task (its execution paused in Label) whose execution was lost
    s = Setup(admin)
    gold = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}
    assert call("PUT", f"/projects/{s.project_id}/tasks/{s.task_id}/gold", admin, gold).status == 200
    first = s.item().label_token
    restart(machine)
    # When the reconciler runs
    reports = _reconcile_until(
        aws,
        "a new Label token",
        lambda: s.item().label_token not in (None, first) and bool(_running(machine, s.task_id)),
        Clock(),
    )
    # Then the gold task's wait has a live execution again; unmarked, it is labelled as any task
    assert [r.repairs for r in reports] == [{Repair.EXECUTION_RESUMED: 1}]
    assert call("DELETE", f"/projects/{s.project_id}/tasks/{s.task_id}/gold", admin).status in (200, 204)
    assert lease(s.project_id, s.ann)["task"]["task_id"] == s.task_id
    assert submit(s.project_id, s.task_id, s.ann).status == 200
    _eventually("review", s.settled_in("in_review", "review_token"))


def test_a_delete_that_fails_anywhere_leaves_no_task_execution_or_slot_behind(
    aws: Aws, admin: Actor, machine: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(reconcile, "ORPHAN_AGE_S", -1)  # every scenario's execution is seconds old

    def scenario(fault: Fault | None) -> None:
        # Given a task with an annotation, waiting in Label under a running execution
        s = Setup(admin)
        added = call("POST", f"/projects/{s.project_id}/tasks/{s.task_id}/annotations", admin, GOOD)
        assert added.status == 201, added.body
        url = f"/projects/{s.project_id}/tasks/{s.task_id}"
        # When the delete meets the fault, and the client retries once
        answer = _careless(faults, fault, lambda: call("DELETE", url, admin))
        assert getattr(answer, "status", None) in (204, 404), answer
        # Then after the reconciler the task and its annotation are gone, its execution has
        # ended, and its window slot is free
        _reconcile_until(aws, "the execution ended", lambda: _running(machine, s.task_id) == [], clock)
        assert call("GET", url, admin).status == 404
        assert queue.annotations_of(s.project_id, s.task_id) == []
        assert s.counters() == {}
        assert window.open_count(s.project_id) == 0

    found = explore("delete", faults, scenario)
    _report(found)
    assert found.lost == []
    assert found.total >= 4 and {"TransactWriteItems", "SendTaskFailure"} <= found.operations


def test_a_backlog_whose_refill_was_lost_is_started_by_the_reconciler(
    aws: Aws, admin: Actor, machine: Any, faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a window of one slot, held by a task waiting in Label, and a task in the backlog
    monkeypatch.setenv("ACTIVE_WINDOW", "1")
    s = Setup(admin)
    (waiting,) = new_tasks(s.project_id, admin, [{"data": {"text": "next"}}])
    assert workflow.start(executions.StartRequest(s.project_id, waiting)) == 0
    # When the first task is deleted and the refill request it sends is lost
    url = f"/projects/{s.project_id}/tasks/{s.task_id}"
    answer = _careless(faults, Fault("error", 1, "SendMessage"), lambda: call("DELETE", url, admin))
    assert faults.fired == "SendMessage" and getattr(answer, "status", None) in (204, 404), answer
    assert _starter(aws) == 0 and window.open_count(s.project_id) == 0
    # Then the reconciler has the starter fill the free slot: the backlog task's execution
    # waits in Label, and the window is full again
    reports = _reconcile_until(
        aws, "the backlog task started", lambda: bool(_item(s.project_id, waiting).label_token), Clock()
    )
    assert [r.repairs for r in reports] == [{Repair.BACKLOG_REFILLED: 1}]
    assert window.open_count(s.project_id) == 1
