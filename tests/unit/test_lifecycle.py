"""The task lifecycle: which status moves are allowed, and what a refused move reports."""

from __future__ import annotations

from collections import deque

import pytest

from serval.domain.lifecycle import (
    INITIAL,
    TRANSITIONS,
    TaskStatus,
    WaitStep,
    can_transition,
    check_transition,
    sources_of,
    waiting_step,
)
from serval.errors import Conflict, InvalidTransition

S = TaskStatus

ALLOWED = sorted((src, dst) for src, targets in TRANSITIONS.items() for dst in targets)
DISALLOWED_SAMPLE = [
    (S.NEW, S.LEASED),  # must be queued first
    (S.NEW, S.SUBMITTED),
    (S.NEW, S.APPROVED),
    (S.QUEUED, S.SUBMITTED),  # must be leased first
    (S.QUEUED, S.APPROVED),
    (S.LEASED, S.APPROVED),  # must be submitted first
    (S.LEASED, S.EXPORTED),
    (S.SUBMITTED, S.EXPORTED),  # must be approved first
    (S.REJECTED, S.APPROVED),  # rework comes first
    (S.APPROVED, S.QUEUED),
    (S.ARCHIVED, S.NEW),
    (S.ARCHIVED, S.LEASED),
    (S.ARCHIVED, S.ARCHIVED),
    (S.QUEUED, S.QUEUED),
]


def test_every_status_has_a_transition_row() -> None:
    # Given the lifecycle table / Then every status has a row (possibly empty) and the start is NEW
    assert set(TRANSITIONS) == set(TaskStatus)
    assert INITIAL is S.NEW


@pytest.mark.parametrize(("current", "target"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_passes(current: TaskStatus, target: TaskStatus) -> None:
    # Given an allowed move / When it is checked / Then nothing is raised
    assert can_transition(current, target)
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"), DISALLOWED_SAMPLE, ids=[f"{a}->{b}" for a, b in DISALLOWED_SAMPLE]
)
def test_disallowed_transition_raises_with_details(current: TaskStatus, target: TaskStatus) -> None:
    # Given a move the table does not allow
    assert not can_transition(current, target)

    # When it is checked
    with pytest.raises(InvalidTransition) as info:
        check_transition(current, target)

    # Then the error names both ends and what is allowed instead, and is a Conflict (HTTP 409)
    err = info.value
    assert isinstance(err, Conflict)
    assert err.code == "invalid_transition"
    assert err.details["from"] == current.value
    assert err.details["to"] == target.value
    assert set(err.details["allowed"]) == {s.value for s in TRANSITIONS[current]}
    assert list(err.details["allowed"]) == sorted(err.details["allowed"])
    assert current.value in err.message
    assert target.value in err.message


def test_every_pair_not_in_the_table_is_refused() -> None:
    # Given every (from, to) pair / Then exactly the table's pairs are allowed
    for current in TaskStatus:
        for target in TaskStatus:
            assert can_transition(current, target) == (target in TRANSITIONS[current])


@pytest.mark.parametrize("target", list(TaskStatus))
def test_sources_of_agrees_with_the_table(target: TaskStatus) -> None:
    # When the sources of a status are asked for
    sources = sources_of(target)

    # Then they are exactly the statuses whose row lists it
    assert sources == {s for s in TaskStatus if target in TRANSITIONS[s]}
    for source in sources:
        assert can_transition(source, target)


def test_nothing_moves_back_to_new() -> None:
    # Given the lifecycle / Then NEW is only ever an initial status
    assert sources_of(S.NEW) == frozenset()


def test_every_status_is_reachable_from_new() -> None:
    # Given a breadth-first walk from the initial status
    seen = {INITIAL}
    frontier = deque([INITIAL])
    while frontier:
        for nxt in TRANSITIONS[frontier.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)

    # Then every status can be reached
    assert seen == set(TaskStatus)


@pytest.mark.parametrize("status", [s for s in TaskStatus if s is not S.ARCHIVED])
def test_every_live_status_can_be_archived(status: TaskStatus) -> None:
    # Given any non-archived task / Then it can be archived
    assert can_transition(status, S.ARCHIVED)


def test_archived_task_can_be_restored_to_queue_only() -> None:
    # Given an archived task / When it is restored / Then it goes back to the queue, nowhere else
    check_transition(S.ARCHIVED, S.QUEUED)
    assert TRANSITIONS[S.ARCHIVED] == frozenset({S.QUEUED})


def test_rework_and_reexport_paths() -> None:
    # Given the review loop / Then rejected work goes back to labelling and exports may repeat
    assert can_transition(S.REJECTED, S.QUEUED)
    assert can_transition(S.REJECTED, S.LEASED)
    assert can_transition(S.EXPORTED, S.EXPORTED)
    assert can_transition(S.SUBMITTED, S.QUEUED)  # overlap > 1
    assert can_transition(S.LEASED, S.QUEUED)  # release / expiry


def test_a_task_waits_in_the_step_whose_token_it_holds_in_that_steps_statuses() -> None:
    # Given a task's status and the step tokens it holds
    # Then it waits in Label while queued, leased (or archived there) with a Label token
    for status in (S.QUEUED, S.LEASED, S.ARCHIVED):
        assert waiting_step(status, label_token=True, review_token=False) is WaitStep.LABEL
    # And in Review while in review (or archived there), even with a used Label token left over
    for status in (S.IN_REVIEW, S.ARCHIVED):
        assert waiting_step(status, label_token=True, review_token=True) is WaitStep.REVIEW
    # And in no step between steps (a submitted round, a rejected task) or without a token
    assert waiting_step(S.SUBMITTED, label_token=True, review_token=False) is None
    assert waiting_step(S.REJECTED, label_token=False, review_token=True) is None
    assert waiting_step(S.QUEUED, label_token=False, review_token=True) is None
    for status in TaskStatus:
        assert waiting_step(status, label_token=False, review_token=False) is None
