"""Queue-key encoding: the GSI1SK order of queued and leased tasks is the documented order."""

from __future__ import annotations

from serval import keys
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import PriorityMode
from serval.domain.queue import may_take, queue_key, round_target


def test_priority_keys_sort_highest_first_then_oldest() -> None:
    # Given tasks with priorities across the whole range, two with equal priority
    made = [
        queue_key(PriorityMode.PRIORITY, task_id=t, created_at=c, priority=p)
        for t, c, p in [
            ("a", "2026-01-01", -1_000_000),
            ("b", "2026-01-02", 1_000_000),
            ("c", "2026-01-03", 0),
            ("d", "2026-01-01", 0),
            ("e", "2026-01-04", 7),
        ]
    ]
    # Then sorting the keys gives highest priority first, the older first on a tie
    assert [k.rsplit("#", 1)[1] for k in sorted(made)] == ["b", "e", "d", "c", "a"]


def test_fifo_and_least_confident_keys() -> None:
    fifo = [
        queue_key(PriorityMode.FIFO, task_id=t, created_at=c) for t, c in [("x", "2026-02"), ("y", "2026-01")]
    ]
    assert sorted(fifo)[0].endswith("#y")
    scores = {"p": 0.95, "q": 0.05, "r": None, "s": 0.5}
    made = {
        queue_key(PriorityMode.LEAST_CONFIDENT, task_id=t, created_at="2026", min_score=s): t
        for t, s in scores.items()
    }
    assert [made[k] for k in sorted(made)] == ["r", "q", "s", "p"]  # no prediction counts as 0


def test_random_keys_differ_and_lease_keys_order_by_expiry() -> None:
    draws = {queue_key(PriorityMode.RANDOM, task_id="t", created_at="2026") for _ in range(20)}
    assert len(draws) == 20
    ended, running = keys.lease_sk(99, "a"), keys.lease_sk(101, "b")
    assert ended < keys.lease_sk_below(100) < running
    assert keys.lease_sk(0, "z") < keys.lease_sk_below(1)  # a free review slot is always claimable


def test_who_may_take_a_task_and_where_a_submit_sends_it() -> None:
    assert may_take("u", None, [], [])
    assert may_take("u", "u", [], [])
    assert not may_take("u", "v", [], [])
    assert not may_take("u", None, ["u"], [])
    assert not may_take("u", None, [], ["u"])
    # a reservation for someone else that ended before now is anyone's; one still running is not
    assert may_take("u", "v", [], [], assigned_until=99, now=100)
    assert not may_take("u", "v", [], [], assigned_until=100, now=100)
    assert not may_take("u", "v", [], [])  # no end: reserved until released
    assert round_target(1, 2) is TaskStatus.QUEUED
    assert round_target(2, 2) is TaskStatus.SUBMITTED
