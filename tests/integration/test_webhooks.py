"""Webhooks end to end in-process: a change on the tasks table -> its stream -> the events
function -> the bus -> the bus rule -> the webhooks queue -> the dispatcher -> a real HTTP
receiver on loopback, which verifies every signature with the ``standardwebhooks`` package.

Retries use an accelerated clock (``WEBHOOK_TIME_SCALE``: the waits last schedule x scale), so
the schedule's days pass in seconds while the log records the schedule's own delays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.local import patches
from infra.local.receiver import Behaviour, Receiver
from serval.domain import webhooks as rules
from serval.domain.actor import Actor
from serval.domain.events import DomainEvent, validate_payload
from serval.domain.models import epoch_of
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import Aws
from tests.integration.streams import StreamReader

SCALE = 0.0005  # 5 s -> 2.5 ms, 10 h -> 18 s
LABELS = {"controls": [{"name": "c", "type": "classification", "classes": [{"name": "a"}]}]}


class Pipeline:
    """Runs the stream -> bus -> dispatcher path by hand, as the event source mappings would."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.stream = StreamReader(aws.env["TASKS_TABLE"])
        self.queue = aws.env["WEBHOOKS_QUEUE_URL"]
        self.dlq = aws.env["WEBHOOKS_DLQ_URL"]
        self.batches = 0

    def publish(self) -> None:
        """The events function on the stream's new records: their events reach the queue."""
        from events.handler import handler as events_handler

        records = self.stream.read()
        if records:
            result = events_handler(
                {"Records": records}, LambdaContextStub(function_name="serval-local-events")
            )
            assert result == {"batchItemFailures": []}

    def step(self) -> int:
        """Publish new stream records, then hand one receive of the webhooks queue to the
        dispatcher (deleting what it handled, as Lambda does). Returns the messages handled."""
        from webhooks.handler import handler as dispatcher

        self.publish()
        messages = self.aws.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return 0
        batch = [
            {"messageId": m["MessageId"], "body": m["Body"], "receiptHandle": m["ReceiptHandle"]}
            for m in messages
        ]
        result = dispatcher({"Records": batch}, LambdaContextStub(function_name="serval-local-webhooks"))
        assert result == {"batchItemFailures": []}
        self.aws.sqs.delete_message_batch(
            QueueUrl=self.queue,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        self.batches += 1
        return len(messages)

    def run_until(self, done: Callable[[], bool], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, "the pipeline did not get there in time"
            if not self.step():
                time.sleep(0.02)

    def drain(self, quiet_s: float = 0.5) -> None:
        """Run until nothing arrives for ``quiet_s``."""
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < quiet_s:
            if self.step():
                idle_since = time.monotonic()
            else:
                time.sleep(0.02)

    def dead(self) -> list[dict[str, Any]]:
        found = []
        while batch := self.aws.sqs.receive_message(
            QueueUrl=self.dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            found += batch
            self.aws.sqs.delete_message_batch(
                QueueUrl=self.dlq,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return found


@pytest.fixture
def hooks(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("WEBHOOK_TIME_SCALE", str(SCALE))
    return Pipeline(aws)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _project(admin: Actor, name: str = "Hooks") -> str:
    response = call(
        "POST", "/projects", admin, {"name": name, "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _subscribe(base: str, admin: Actor, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    response = call("POST", base, admin, {"url": receiver.url, **extra})
    assert response.status == 201, response.body
    created = dict(response.body)
    receiver.secrets.append(created["secret"])
    return created


def _receiver(receivers: list[Receiver], **behaviour: Any) -> Receiver:
    receiver = Receiver(secrets=[], behaviour=Behaviour(**behaviour)).start()
    receivers.append(receiver)
    return receiver


def _tasks(project_id: str, admin: Actor, n: int) -> list[str]:
    response = call(
        "POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": f"t{i}"}} for i in range(n)]
    )
    assert response.status == 201, response.body
    return list(response.body["task_ids"])


def _log(base: str, admin: Actor, **query: str) -> list[dict[str, Any]]:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    response = call("GET", f"{base}/deliveries?limit=500&{suffix}", admin)
    assert response.status == 200, response.body
    return list(response.body["items"])


def test_events_reach_a_subscribed_receiver_signed_and_valid(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    # Given a project with a subscription to task.created only, and an org-wide one to everything
    pid = _project(admin)
    only_created = _receiver(receivers)
    everything = _receiver(receivers)
    project_sub = _subscribe(f"/projects/{pid}/webhooks", admin, only_created, event_types=["task.created"])
    _subscribe("/webhooks", admin, everything)
    # When three tasks are created
    task_ids = _tasks(pid, admin, 3)
    hooks.run_until(lambda: len(only_created.received) >= 3 and len(everything.received) >= 6)
    hooks.drain()
    # Then the project subscription got exactly the three task.created, once each, verified
    got = only_created.received
    assert sorted(r.event["data"]["task_id"] for r in got) == sorted(task_ids)
    assert {r.event["type"] for r in got} == {"task.created"}
    assert len(set(only_created.ids())) == 3 and not only_created.rejected
    # and webhook-id is the event's own stable id; every body validates against its schema
    for r in [*got, *everything.received]:
        assert r.webhook_id == r.event["id"]
        validate_payload(DomainEvent.model_validate(r.event))
        assert r.event["occurred_at"].endswith("Z")
    # the org subscription got the project's events since it subscribed (the stream had not been
    # read yet when it did: the project's creation and its first manager too)
    everything_types = sorted(r.event["type"] for r in everything.received)
    assert everything_types == ["import.completed", "member.added", "project.created", *["task.created"] * 3]
    # And the log holds one delivered attempt per event
    log = _log(f"/projects/{pid}/webhooks/{project_sub['webhook_id']}", admin)
    assert sorted(d["event_id"] for d in log) == sorted(only_created.ids())
    assert {(d["outcome"], d["status"], d["attempt"]) for d in log} == {("delivered", 200, 1)}
    # and the event's own log lists both subscriptions' attempts to an admin, the project's to its manager
    event_id = got[0].webhook_id
    admin_view = call("GET", f"/events/{event_id}/deliveries", admin).body["items"]
    assert {d["webhook_id"] for d in admin_view} >= {project_sub["webhook_id"]}
    project_view = call("GET", f"/projects/{pid}/events/{event_id}/deliveries", admin).body["items"]
    assert [d["webhook_id"] for d in project_view] == [project_sub["webhook_id"]]


def test_an_outage_loses_nothing_and_retries_on_the_schedule(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    # Given a receiver that answers 500 to its first 4 requests, then recovers
    pid = _project(admin)
    receiver = _receiver(receivers, fail_first=4)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["task.created"])
    # When two tasks are created
    _tasks(pid, admin, 2)
    hooks.run_until(lambda: len(receiver.received) >= 2)
    hooks.drain()
    # Then both events arrived exactly once, each with its own id
    assert len(receiver.ids()) == len(set(receiver.ids())) == 2
    log = sorted(
        _log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin),
        key=lambda d: (d["event_id"], d["attempt"]),
    )
    by_event: dict[str, list[dict[str, Any]]] = {}
    for d in log:
        by_event.setdefault(d["event_id"], []).append(d)
    for attempts in by_event.values():
        assert [d["attempt"] for d in attempts] == list(range(1, len(attempts) + 1))
        assert [d["outcome"] for d in attempts] == ["failed"] * (len(attempts) - 1) + ["delivered"]
        # each retry waited its schedule's delay, within the ±10 % jitter
        for d in attempts[1:]:
            planned = rules.RETRY_SCHEDULE_S[d["attempt"] - 2]
            assert planned * 0.9 <= d["delay_s"] <= planned * 1.1, d
            assert d["delay_s"] * SCALE <= _gap(attempts, d) + 0.05
        assert attempts[0]["next_attempt_at"] is not None and attempts[-1]["next_attempt_at"] is None
    assert sum(len(a) - 1 for a in by_event.values()) == 4  # the four 500s, retried
    assert (
        call("GET", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin).body["consecutive_failures"] == 0
    )


def _gap(attempts: list[dict[str, Any]], d: dict[str, Any]) -> float:
    before = next(x for x in attempts if x["attempt"] == d["attempt"] - 1)
    return epoch_of(d["attempted_at"]) - epoch_of(before["attempted_at"])


def test_a_hanging_receiver_times_out_and_is_retried_without_delaying_another(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "DELIVERY_TIMEOUT_S", 0.5)
    pid = _project(admin)
    slow = _receiver(receivers, hang_s=2.0)
    fast = _receiver(receivers)
    slow_sub = _subscribe(f"/projects/{pid}/webhooks", admin, slow, event_types=["task.created"])
    _subscribe(f"/projects/{pid}/webhooks", admin, fast, event_types=["task.created"])
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: len(fast.received) >= 1)
    log = _log(f"/projects/{pid}/webhooks/{slow_sub['webhook_id']}", admin)
    assert log and log[-1]["outcome"] == "failed" and log[-1]["status"] is None
    assert "no answer within 0.5 s" in log[-1]["error"]
    assert log[-1]["next_attempt_at"] is not None  # retried
    # the fast receiver was answered while the slow one hung: its attempt did not wait for it
    assert fast.received[0].at - epoch_of(log[-1]["attempted_at"]) < 0.5
    hooks.run_until(lambda: len(_log(f"/projects/{pid}/webhooks/{slow_sub['webhook_id']}", admin)) >= 2, 30)


def test_repeated_failures_disable_the_subscription_and_emit_webhook_disabled(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_FAILURES", "3")
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_S", "0")
    pid = _project(admin)
    broken = _receiver(receivers, fail_first=10_000)
    watcher = _receiver(receivers)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, broken, event_types=["task.created"])
    _subscribe("/webhooks", admin, watcher, event_types=["webhook.disabled"])
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: len(watcher.received) >= 1)
    shown = call("GET", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin).body
    assert shown["status"] == "disabled" and "3 deliveries in a row failed" in shown["disabled_reason"]
    disabled = watcher.received[0].event
    assert disabled["type"] == "webhook.disabled" and disabled["data"]["webhook_id"] == sub["webhook_id"]
    validate_payload(DomainEvent.model_validate(disabled))
    # the disabled subscription's retry is not sent: it is logged as skipped
    hooks.drain(quiet_s=1.0)
    assert broken.requests == 3
    log = _log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)
    assert {d["outcome"] for d in log} == {"failed", "skipped"}
    # the audit trail names the dispatcher as who disabled it
    audit = call("GET", f"/projects/{pid}/audit?limit=100", admin).body["items"]
    assert any(r["action"] == "webhook.disable" and r["actor_id"] == "system:webhooks" for r in audit)
    # resuming enables it again with a clean count
    resumed = call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/resume", admin).body
    assert (
        resumed["status"] == "active"
        and resumed["consecutive_failures"] == 0
        and resumed["disabled_reason"] is None
    )


def test_a_410_disables_at_once(hooks: Pipeline, admin: Actor, receivers: list[Receiver]) -> None:
    pid = _project(admin)
    gone = _receiver(receivers, status=410)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, gone, event_types=["task.created"])
    _tasks(pid, admin, 1)
    hooks.run_until(
        lambda: (
            call("GET", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin).body["status"] == "disabled"
        )
    )
    shown = call("GET", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin).body
    assert "410" in shown["disabled_reason"]
    hooks.drain()
    assert gone.requests == 1
    assert [d["outcome"] for d in _log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)] == ["gone"]


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET_OVERLAP_S", "2")
    pid = _project(admin)
    old_only = _receiver(receivers)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, old_only, event_types=["task.created"])
    old_secret = old_only.secrets[0]
    rotated = call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/rotate-secret", admin)
    assert rotated.status == 200, rotated.body
    new_secret = rotated.body["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert rotated.body["previous_secret_expires_at"] is not None
    # during the overlap: a receiver knowing only the old secret verifies, and one knowing only the new
    new_only = _receiver(receivers)
    new_only.secrets.append(new_secret)
    call("PATCH", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin, {"url": old_only.url})
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: len(old_only.received) >= 1)
    test = call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/test", admin).body
    assert test["delivery"]["outcome"] == "delivered"
    call("PATCH", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin, {"url": new_only.url})
    assert (
        call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/test", admin).body["delivery"]["status"]
        == 200
    )
    # after the overlap (2 s here): only the new secret verifies
    time.sleep(2.2)
    call("PATCH", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin, {"url": old_only.url})
    refused = call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/test", admin).body["delivery"]
    assert refused["status"] == 401 and old_only.rejected  # the old secret no longer verifies
    call("PATCH", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin, {"url": new_only.url})
    assert (
        call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/test", admin).body["delivery"]["status"]
        == 200
    )
    # the secret is never shown again, nor kept in the audit trail; the trail names who rotated
    shown = call("GET", f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin).body
    assert "secret" not in shown
    audit = json.dumps(call("GET", f"/projects/{pid}/audit?limit=100", admin).body)
    assert old_secret not in audit and new_secret not in audit
    rotations = [r for r in json.loads(audit)["items"] if r["action"] == "webhook.rotate_secret"]
    assert [r["actor_id"] for r in rotations] == [admin.user_id]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "not a public address"),
        ("169.254.169.254", "link-local"),
        ("fd00::1", "not a public address"),
    ],
)
def test_ssrf_private_and_link_local_destinations_are_refused_and_logged(
    hooks: Pipeline, admin: Actor, monkeypatch: pytest.MonkeyPatch, address: str, why: str
) -> None:
    from serval.adapters import webhook_http

    # a public-looking name that resolves to a private address at delivery time
    monkeypatch.setattr(webhook_http, "resolve", lambda host, port: [address])
    pid = _project(admin)
    sub = call(
        "POST",
        f"/projects/{pid}/webhooks",
        admin,
        {"url": "https://hooks.example.com/in", "event_types": ["task.created"]},
    ).body
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: bool(_log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)))
    entry = _log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)[0]
    assert entry["outcome"] == "refused" and why in entry["error"] and entry["status"] is None


def test_ssrf_urls_are_refused_at_subscription_time(hooks: Pipeline, admin: Actor) -> None:
    pid = _project(admin)
    for url in (
        "http://example.com/hook",
        "https://user:pw@example.com/",
        "ftp://example.com/",
        "http://10.0.0.1/",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00::1]/",
        "https://[::ffff:192.168.0.1]/",
    ):
        response = call("POST", f"/projects/{pid}/webhooks", admin, {"url": url})
        assert response.status == 422, (url, response.body)
        assert response.body["error"]["code"] == "validation_failed"


def test_a_redirect_to_a_private_address_is_not_followed(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    pid = _project(admin)
    target = _receiver(receivers)
    redirector = _receiver(receivers, redirect_to="http://10.0.0.1/steal")
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, redirector, event_types=["task.created"])
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: bool(_log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)))
    entry = _log(f"/projects/{pid}/webhooks/{sub['webhook_id']}", admin)[0]
    assert entry["outcome"] == "failed" and entry["status"] == 307  # an answer, not followed
    assert target.requests == 0


def test_replay_of_one_delivery_and_of_a_range_keeps_the_webhook_id(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    pid = _project(admin)
    receiver = _receiver(receivers)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["task.created"])
    base = f"/projects/{pid}/webhooks/{sub['webhook_id']}"
    started = _now_iso()
    _tasks(pid, admin, 3)
    hooks.run_until(lambda: len(receiver.received) >= 3)
    hooks.drain()
    first = receiver.ids()
    # one delivery
    one = call("POST", f"{base}/deliveries/{first[0]}/replay", admin)
    assert one.status == 202 and one.body["queued"] == 1
    hooks.run_until(lambda: len(receiver.received) >= 4)
    assert receiver.ids()[3] == first[0]
    # a time range: every event once (the replay above is in the range too, deduplicated by event)
    ranged = call("POST", f"{base}/replay", admin, {"from": started, "to": _now_iso(1)})
    assert ranged.status == 202 and ranged.body == {"queued": 3, "next_from": None}
    hooks.run_until(lambda: len(receiver.received) >= 7)
    assert sorted(receiver.ids()[4:]) == sorted(first)
    replayed = [d for d in _log(base, admin) if d["replay"]]
    assert len(replayed) == 4 and all(d["outcome"] == "delivered" for d in replayed)
    # an unknown event or another subscription's event: 404
    assert call("POST", f"{base}/deliveries/evt_nope/replay", admin).status == 404


def _now_iso(ahead_s: float = 0) -> str:
    moment = time.time() + ahead_s
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment * 1000) % 1000:03d}Z"


def test_a_paused_subscription_skips_and_a_replay_recovers(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    pid = _project(admin)
    receiver = _receiver(receivers)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["task.created"])
    base = f"/projects/{pid}/webhooks/{sub['webhook_id']}"
    assert call("POST", f"{base}/pause", admin).body["status"] == "paused"
    started = _now_iso()
    _tasks(pid, admin, 2)
    hooks.run_until(lambda: len(_log(base, admin)) >= 2)
    assert receiver.requests == 0 and {d["outcome"] for d in _log(base, admin)} == {"skipped"}
    call("POST", f"{base}/resume", admin)
    assert call("POST", f"{base}/replay", admin, {"from": started, "to": _now_iso(1)}).body["queued"] == 2
    hooks.run_until(lambda: len(receiver.received) >= 2)


def test_poison_messages_go_to_the_dlq_with_their_reason(hooks: Pipeline, aws: Aws) -> None:
    aws.sqs.send_message(QueueUrl=hooks.queue, MessageBody="not json")
    aws.sqs.send_message(QueueUrl=hooks.queue, MessageBody=json.dumps({"kind": "delivery"}))
    hooks.drain()
    dead = hooks.dead()
    assert len(dead) == 2
    assert all(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)


def test_a_delivery_whose_retries_are_spent_goes_to_the_dlq(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "RETRY_SCHEDULE_S", (5, 300))  # a short schedule: 3 attempts in all
    pid = _project(admin)
    broken = _receiver(receivers, fail_first=10_000)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, broken, event_types=["task.created"])
    _tasks(pid, admin, 1)
    hooks.run_until(lambda: broken.requests >= 3)
    hooks.drain()
    dead = hooks.dead()
    assert len(dead) == 1
    body = json.loads(dead[0]["Body"])
    assert body["webhook_id"] == sub["webhook_id"] and body["attempt"] == 3
    assert "after 3 attempts" in dead[0]["MessageAttributes"]["reason"]["StringValue"]
    # still replayable from the log
    assert (
        call(
            "POST",
            f"/projects/{pid}/webhooks/{sub['webhook_id']}/deliveries/{body['event']['id']}/replay",
            admin,
        ).status
        == 202
    )


def test_a_batch_past_its_attempt_budget_queues_the_rest_and_loses_none(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    from serval.logic import dispatch

    # Given a budget of 2 attempts per invocation and two subscriptions to task.created
    monkeypatch.setattr(dispatch, "MAX_ATTEMPTS", 2)
    pid = _project(admin)
    first, second = _receiver(receivers), _receiver(receivers)
    for receiver in (first, second):
        _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["task.created"])
    task_ids = _tasks(pid, admin, 3)
    # When one invocation gets the project's first events: three task.created (six deliveries)
    hooks.publish()
    messages = hooks.aws.sqs.receive_message(QueueUrl=hooks.queue, MaxNumberOfMessages=10)["Messages"]
    types = [json.loads(m["Body"])["detail-type"] for m in messages]
    assert types.count("task.created") == 3
    report = dispatch.dispatch([{"messageId": m["MessageId"], "body": m["Body"]} for m in messages])
    hooks.aws.sqs.delete_message_batch(
        QueueUrl=hooks.queue,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
    )
    # Then it attempts two and queues the rest again, due now
    assert report.delivered == 2 and report.deferred == 4
    assert len(first.received) + len(second.received) == 2
    # And the rest reaches both receivers: every event once each, as a first attempt
    hooks.drain()
    for receiver in (first, second):
        got = sorted(
            r.event["data"]["task_id"] for r in receiver.received if r.event["type"] == "task.created"
        )
        assert got == sorted(task_ids)
        assert len(set(receiver.ids())) == len(receiver.ids())


def test_a_test_event_is_delivered_now_and_answers_with_the_result(
    hooks: Pipeline, admin: Actor, receivers: list[Receiver]
) -> None:
    pid = _project(admin)
    receiver = _receiver(receivers)
    sub = _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["task.created"])
    result = call("POST", f"/projects/{pid}/webhooks/{sub['webhook_id']}/test", admin)
    assert result.status == 200, result.body
    assert result.body["delivery"]["outcome"] == "delivered" and result.body["delivery"]["status"] == 200
    event = receiver.received[0].event
    assert event["type"] == "webhook.test" and event["data"]["webhook_id"] == sub["webhook_id"]
    validate_payload(DomainEvent.model_validate(event))


def test_an_import_that_fails_reaches_its_subscribers_as_import_failed(
    hooks: Pipeline, aws: Aws, admin: Actor, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one event no HTTP client can cause: a split manifest whose object version vanishes
    before its ranges run (the ranges tests' scenario) fails its import."""
    from serval.logic import ingest
    from tests.integration.test_ingest_ranges import JSONL_LINES, _drain, _forever, _split, _upload

    pid = _project(admin)
    receiver = _receiver(receivers)
    _subscribe(f"/projects/{pid}/webhooks", admin, receiver, event_types=["import.failed"])
    key = f"projects/{pid}/vanishing.jsonl"
    body = _upload(aws, key, b"\n".join(JSONL_LINES))
    split = _split(monkeypatch, body, 128)
    messages = _drain(aws)
    version = json.loads(body)["Records"][0]["s3"]["object"]["versionId"]
    aws.s3.delete_object(Bucket=aws.env["DATA_BUCKET"], Key=key, VersionId=version)
    for i, message in enumerate(messages):
        ingest.process_range_message(message, f"r{i}", _forever)
    hooks.run_until(lambda: len(receiver.received) >= 1)
    event = receiver.received[0].event
    assert event["type"] == "import.failed" and event["data"]["import_id"] == split.detail["import_id"]
    assert "no longer exists" in event["data"]["reason"]
    validate_payload(DomainEvent.model_validate(event))


def test_careless_and_hostile_subscription_requests_get_clear_4xx(hooks: Pipeline, admin: Actor) -> None:
    pid = _project(admin)
    base = f"/projects/{pid}/webhooks"
    url = "https://hooks.example.com/in"
    for body in (
        {"url": url, "event_types": ["task.nope"]},
        {"url": url, "description": "x" * 501},
        {"url": url, "secret": "whsec_mine"},  # the server makes secrets
        {"url": 42},
        {"url": "https://" + "a" * 2050 + ".example.com/"},
    ):
        response = call("POST", base, admin, body)
        assert response.status == 422, (body, response.body)
        assert response.body["error"]["code"] == "validation_failed"
    # non-ASCII text at the limit is fine, and comes back as sent
    described = call("POST", base, admin, {"url": url, "description": "é😀" * 250}).body
    assert described["description"] == "é😀" * 250
    # an unknown project, another scope's id, and an unknown id: 404
    assert call("POST", "/projects/p_nope/webhooks", admin, {"url": url}).status == 404
    other = _project(admin, "Other")
    assert call("GET", f"/projects/{other}/webhooks/{described['webhook_id']}", admin).status == 404
    assert call("GET", f"/webhooks/{described['webhook_id']}", admin).status == 404
    assert call("POST", f"{base}/wh_nope/test", admin).status == 404
    # a scope holds at most 20 subscriptions
    for _ in range(19):
        assert call("POST", base, admin, {"url": url}).status == 201
    over = call("POST", base, admin, {"url": url})
    assert over.status == 409 and over.body["error"]["code"] == "limit_exceeded"
    # no listing or get ever shows a secret
    assert "whsec_" not in json.dumps(call("GET", base, admin).body)


def test_concurrent_changes_to_one_subscription_never_lose_one_silently(
    hooks: Pipeline, admin: Actor
) -> None:
    import threading

    pid = _project(admin)
    sub = call("POST", f"/projects/{pid}/webhooks", admin, {"url": "https://hooks.example.com/in"}).body
    path = f"/projects/{pid}/webhooks/{sub['webhook_id']}"
    statuses: list[int] = []  # 200: it won; 409: it was told the subscription changed
    barrier = threading.Barrier(6)

    from serval.domain.subscriptions import SubscriptionUpdate
    from serval.errors import Conflict
    from serval.logic import webhooks as logic

    def change(i: int) -> None:  # the logic itself: one Lambda container serves one request at a time
        barrier.wait()
        try:
            logic.update(pid, sub["webhook_id"], SubscriptionUpdate(description=f"writer {i}"), admin)
            statuses.append(200)
        except Conflict:
            statuses.append(409)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(6)]
    with patches.installed():  # moto's writes made atomic, as the local stack runs them (AWS is)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # every writer either won (200) or was told it lost (409); the version counts the winners
    assert set(statuses) <= {200, 409} and 200 in statuses
    final = call("GET", path, admin).body
    assert final["version"] == 1 + statuses.count(200)
    audit = call("GET", f"/projects/{pid}/audit?limit=100", admin).body["items"]
    assert sum(r["action"] == "webhook.update" for r in audit) == statuses.count(200)
