"""The webhook dispatcher: domain events in, signed deliveries out, every attempt logged.

The ``webhooks`` queue carries two kinds of message:

* an event from the bus (the EventBridge envelope; ``detail`` is the domain event): it fans out
  to every subscription of its scope that wants its type: first attempts;
* a delivery (``{"kind": "delivery", ...}``): one subscription and one event, a retry or a
  replay, due at ``due_at``. SQS delays a message 15 minutes at most, so a retry due later is
  sent again with the rest of its wait each time it comes back early.

A batch's deliveries run side by side, each within ``DELIVERY_TIMEOUT_S``, so one slow
consumer never holds back another's. A failed attempt schedules the next one on
``RETRY_SCHEDULE_S``; the last goes to the DLQ with its reason (still replayable from the log).
A 410 disables the subscription at once; a run of failures as long as the settings say, too.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from serval.adapters import deliveries, queues, webhook_http
from serval.adapters import webhooks as subscriptions
from serval.adapters.deliveries import LoggedAttempt
from serval.domain import webhooks
from serval.domain.events import DomainEvent
from serval.domain.models import epoch_of, iso_of, utcnow
from serval.domain.subscriptions import Delivery, DeliveryOutcome, SubscriptionStatus, matches
from serval.settings import settings

MAX_PARALLEL = 64  # deliveries in flight at once in one invocation (see infra.spec.WEBHOOKS_TIMEOUT_S)
# attempts one invocation makes at most (six rounds of MAX_PARALLEL, each within the delivery
# timeout): a batch that fans out to more queues the rest again, due at once, so an invocation
# always ends well within its timeout however many subscriptions match
MAX_ATTEMPTS = 6 * MAX_PARALLEL


class DeliveryMessage(BaseModel):
    """A delivery of one event to one subscription, due at ``due_at`` (epoch seconds)."""

    kind: str = "delivery"
    webhook_id: str
    project_id: str | None  # the subscription's project; None for an organisation one
    event: DomainEvent
    attempt: int
    due_at: float
    delay_s: float | None = None  # the wait before this attempt (schedule + jitter)
    replay: bool = False


@dataclass
class Report:
    """What one batch did: for logs, metrics and the benchmark's request counts."""

    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0  # retries back early (sent again with their rest), attempts past the budget
    dead: int = 0
    disabled: list[str] = field(default_factory=list)
    poison: list[tuple[str, str]] = field(default_factory=list)  # (message id, reason)
    latencies_ms: list[float] = field(default_factory=list)


def body_of(event: DomainEvent) -> bytes:
    """The bytes a consumer receives (and the signature covers)."""
    return event.model_dump_json(by_alias=True).encode()


def attempt(item: Any, message: DeliveryMessage, now: Callable[[], float] = time.time) -> Delivery:
    """Sign and send one delivery; the attempt as the log records it (no retry decided yet)."""
    cfg = settings()
    body = body_of(message.event)
    headers = webhooks.delivery_headers(
        subscriptions.signing_secrets(item, now()), message.event.id, int(now()), body
    )
    at = utcnow()
    result = webhook_http.deliver(
        item.url,
        body,
        headers,
        allow_loopback=cfg.SERVAL_ENV == "local",
        timeout_s=webhooks.DELIVERY_TIMEOUT_S,
        resolver=webhook_http.resolve,
    )
    if result.refused:
        outcome = DeliveryOutcome.REFUSED
    else:
        outcome = DeliveryOutcome(webhooks.outcome_of(result.status).value)
    return Delivery(
        webhook_id=item.webhook_id,
        event_id=message.event.id,
        event_type=message.event.type,
        attempt=message.attempt,
        attempted_at=at,
        outcome=outcome,
        status=result.status,
        latency_ms=round(result.latency_ms),
        response_excerpt=result.body_excerpt,
        error=result.error,
        delay_s=round(message.delay_s, 3) if message.delay_s is not None else None,
        replay=message.replay,
        next_attempt_at=None,
    )


def skipped(item: Any, message: DeliveryMessage) -> Delivery:
    """A delivery not sent because its subscription is paused or disabled (replayable)."""
    return Delivery(
        webhook_id=message.webhook_id,
        event_id=message.event.id,
        event_type=message.event.type,
        attempt=message.attempt,
        attempted_at=utcnow(),
        outcome=DeliveryOutcome.SKIPPED,
        status=None,
        latency_ms=0,
        response_excerpt="",
        error=f"the subscription is {item.status}",
        delay_s=message.delay_s,
        replay=message.replay,
        next_attempt_at=None,
    )


def _parse(body: str) -> DomainEvent | DeliveryMessage:
    """A bus event (its domain event: first attempts follow) or a delivery message; ValueError
    (or ValidationError) for anything else."""
    raw = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError("a webhooks message is a JSON object")
    if raw.get("kind") == "delivery":
        return DeliveryMessage.model_validate(raw)
    if raw.get("source") == "serval" and isinstance(raw.get("detail"), dict):
        return DomainEvent.model_validate(raw["detail"])
    raise ValueError("neither a Serval bus event nor a delivery")


def _fan_out(events: Sequence[DomainEvent], now: float) -> list[tuple[Any, DeliveryMessage]]:
    """First attempts of ``events``: every subscription of each event's project and of the
    organisation whose filter matches, as (subscription, message) pairs."""
    scopes = {e.project_id for e in events if e.project_id} | {None}
    found = {scope: subscriptions.list_scope(scope) for scope in scopes}
    pairs = []
    for event in events:
        for scope in (event.project_id, None) if event.project_id else (None,):
            for item in found.get(scope, []):
                if matches(list(item.event_types or []), event.type):
                    message = DeliveryMessage(
                        webhook_id=item.webhook_id,
                        project_id=item.project_id,
                        event=event,
                        attempt=1,
                        due_at=now,
                    )
                    pairs.append((item, message))
    return pairs


def _retry_message(message: DeliveryMessage, now: float) -> tuple[DeliveryMessage | None, float | None]:
    delay = webhooks.retry_delay(message.attempt)
    if delay is None:
        return None, None
    due = now + delay * settings().WEBHOOK_TIME_SCALE
    following = message.model_copy(update={"attempt": message.attempt + 1, "due_at": due, "delay_s": delay})
    return following, due


def _wait_of(message: DeliveryMessage, now: float) -> int:
    return max(0, min(queues.MAX_DELAY_S, math.ceil(message.due_at - now)))


def _send(messages: Sequence[DeliveryMessage], now: float) -> None:
    if messages:
        queues.send_batch(
            settings().WEBHOOKS_QUEUE_URL,
            [m.model_dump_json(by_alias=True) for m in messages],
            {},
            delays=[_wait_of(m, now) for m in messages],
        )


def _dead(messages: Sequence[tuple[DeliveryMessage, str]]) -> None:
    if messages:
        for message, reason in messages:
            queues.send(
                settings().WEBHOOKS_DLQ_URL, message.model_dump_json(by_alias=True), {"reason": reason[:256]}
            )


def _bookkeeping(item: Any, results: Sequence[Delivery], report: Report, now: float) -> None:
    """Failure counting and automatic disabling for one subscription's results of a batch."""
    cfg = settings()
    if any(r.outcome is DeliveryOutcome.GONE for r in results):
        if subscriptions.disable(item, "the endpoint answered 410 Gone"):
            report.disabled.append(item.webhook_id)
        return
    if any(r.outcome is DeliveryOutcome.DELIVERED for r in results):
        subscriptions.record_delivered(item)
        return
    failures = sum(
        1 for r in results if r.outcome in (DeliveryOutcome.FAILED, DeliveryOutcome.REFUSED) and not r.replay
    )
    if not failures:
        return
    run, since = subscriptions.record_failed(item, failures)
    began = epoch_of(since) if since else now
    if run >= cfg.WEBHOOK_DISABLE_AFTER_FAILURES and now - began >= cfg.WEBHOOK_DISABLE_AFTER_S:
        reason = f"{run} deliveries in a row failed since {since}"
        if subscriptions.disable(item, reason):
            report.disabled.append(item.webhook_id)


@dataclass
class _Batch:
    fresh: list[DomainEvent] = field(default_factory=list)  # bus events: first attempts
    due: list[DeliveryMessage] = field(default_factory=list)  # retries and replays due now
    early: list[DeliveryMessage] = field(default_factory=list)  # retries due later: wait again


def _sort(records: Sequence[dict[str, Any]], report: Report, started: float) -> _Batch:
    batch = _Batch()
    for record in records:
        try:
            parsed = _parse(record["body"])
        except (ValueError, ValidationError) as exc:
            report.poison.append((str(record.get("messageId")), f"{type(exc).__name__}: {str(exc)[:500]}"))
            continue
        if isinstance(parsed, DomainEvent):
            batch.fresh.append(parsed)
        elif parsed.due_at > started + 0.5:
            batch.early.append(parsed)
        else:
            batch.due.append(parsed)
    for message_id, reason in report.poison:
        queues.send(
            settings().WEBHOOKS_DLQ_URL,
            json.dumps({"message_id": message_id, "reason": reason}),
            {"reason": reason[:256]},
        )
    return batch


def _within_budget(
    pairs: Sequence[tuple[Any, DeliveryMessage]],
) -> tuple[list[tuple[Any, DeliveryMessage]], list[DeliveryMessage]]:
    """The pairs this invocation attempts (at most MAX_ATTEMPTS sends; a skipped one costs
    none) and the messages of the rest, queued again as they are (due now)."""
    kept: list[tuple[Any, DeliveryMessage]] = []
    overflow: list[DeliveryMessage] = []
    sends = 0
    for item, message in pairs:
        active = item.status == SubscriptionStatus.ACTIVE.value
        if active and sends >= MAX_ATTEMPTS:
            overflow.append(message)
            continue
        sends += active
        kept.append((item, message))
    return kept, overflow


def _send_all(
    pairs: Sequence[tuple[Any, DeliveryMessage]], now: Callable[[], float]
) -> list[tuple[Any, DeliveryMessage, Delivery]]:
    """Every pair's attempt side by side (an inactive subscription's: skipped, not sent)."""
    sendable = [(i, m) for i, m in pairs if i.status == SubscriptionStatus.ACTIVE.value]
    results: list[tuple[Any, DeliveryMessage, Delivery]] = []
    if sendable:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(sendable))) as pool:
            outcomes = list(pool.map(lambda pair: attempt(pair[0], pair[1], now), sendable))
        results = [(i, m, d) for (i, m), d in zip(sendable, outcomes, strict=True)]
    return results + [(i, m, skipped(i, m)) for i, m in pairs if i.status != SubscriptionStatus.ACTIVE.value]


@dataclass
class _Settled:
    retries: list[DeliveryMessage] = field(default_factory=list)
    dead: list[tuple[DeliveryMessage, str]] = field(default_factory=list)
    logged: list[LoggedAttempt] = field(default_factory=list)
    by_subscription: dict[str, list[Delivery]] = field(default_factory=lambda: defaultdict(list))
    items: dict[str, Any] = field(default_factory=dict)


def _settle(
    item: Any, message: DeliveryMessage, delivery: Delivery, settled: _Settled, report: Report, now: float
) -> None:
    """What follows one attempt: its retry or the DLQ, its log row, its subscription's counts."""
    if delivery.outcome in (DeliveryOutcome.FAILED, DeliveryOutcome.REFUSED):
        report.failed += 1
        # a replay is one attempt: its caller sees the outcome in the log and may replay again
        following, due_at = (None, None) if message.replay else _retry_message(message, now)
        if following is not None and due_at is not None:
            settled.retries.append(following)
            delivery = delivery.model_copy(update={"next_attempt_at": iso_of(due_at)})
        elif not message.replay:
            reason = (
                f"no answer accepted after {message.attempt} attempts: {delivery.error or delivery.status}"
            )
            settled.dead.append((message, reason))
    elif delivery.outcome is DeliveryOutcome.SKIPPED:
        report.skipped += 1
    else:
        report.delivered += delivery.outcome is DeliveryOutcome.DELIVERED
        report.latencies_ms.append(delivery.latency_ms)
    settled.logged.append(
        LoggedAttempt(delivery, item.project_id, message.event.model_dump(mode="json", by_alias=True))
    )
    if delivery.outcome is not DeliveryOutcome.SKIPPED:
        settled.by_subscription[item.webhook_id].append(delivery)
        settled.items[item.webhook_id] = item


def dispatch(records: Sequence[dict[str, Any]], now: Callable[[], float] = time.time) -> Report:
    """Handle one SQS batch of the webhooks queue (records with ``messageId`` and ``body``).

    Raises only when AWS fails (the batch is retried; an attempt already made is then repeated,
    which consumers deduplicate by ``webhook-id``)."""
    report = Report()
    started = now()
    batch = _sort(records, report, started)
    _send(batch.early, started)
    report.deferred = len(batch.early)

    found = subscriptions.get_many((m.project_id, m.webhook_id) for m in batch.due)
    pairs = [(found[m.webhook_id], m) for m in batch.due if m.webhook_id in found]
    pairs += _fan_out(batch.fresh, started)
    pairs, overflow = _within_budget(pairs)
    _send(overflow, started)
    report.deferred += len(overflow)
    results = _send_all(pairs, now)

    after = now()
    settled = _Settled()
    for item, message, delivery in results:
        _settle(item, message, delivery, settled, report, after)
    deliveries.put(settled.logged)
    _send(settled.retries, after)
    _dead(settled.dead)
    report.dead = len(settled.dead)
    for webhook_id, attempts in settled.by_subscription.items():
        _bookkeeping(settled.items[webhook_id], attempts, report, after)
    return report


def deliver_now(item: Any, event: DomainEvent, *, replay: bool = False) -> Delivery:
    """One attempt right now, logged, without retries (the API's test delivery)."""
    message = DeliveryMessage(
        webhook_id=item.webhook_id,
        project_id=item.project_id,
        event=event,
        attempt=1,
        due_at=time.time(),
        replay=replay,
    )
    delivery = attempt(item, message)
    deliveries.put([LoggedAttempt(delivery, item.project_id, event.model_dump(mode="json", by_alias=True))])
    return delivery


def replay_messages(item: Any, events: Sequence[DomainEvent], attempt_of: Callable[[str], int]) -> int:
    """Queue a delivery of each event to the subscription now (same ``webhook-id``, signed with
    the current secrets when sent). Returns the number queued."""
    now = time.time()
    messages = [
        DeliveryMessage(
            webhook_id=item.webhook_id,
            project_id=item.project_id,
            event=e,
            attempt=attempt_of(e.id),
            due_at=now,
            replay=True,
        )
        for e in events
    ]
    _send(messages, now)
    return len(messages)
