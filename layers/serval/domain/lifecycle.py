"""The task lifecycle. The allowed transitions live here and nowhere else."""

from __future__ import annotations

from enum import StrEnum

from serval.errors import InvalidTransition


class TaskStatus(StrEnum):
    NEW = "new"
    PRELABELED = "prelabeled"
    QUEUED = "queued"
    LEASED = "leased"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPORTED = "exported"
    ARCHIVED = "archived"


S = TaskStatus

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.NEW: frozenset({S.PRELABELED, S.QUEUED, S.ARCHIVED}),
    S.PRELABELED: frozenset({S.QUEUED, S.IN_REVIEW, S.ARCHIVED}),
    S.QUEUED: frozenset({S.LEASED, S.ARCHIVED}),
    # a lease ends in a submit, or returns the task (release, skip, expiry)
    S.LEASED: frozenset({S.SUBMITTED, S.QUEUED, S.ARCHIVED}),
    # with overlap > 1 a submitted task returns to the queue for its next annotator
    S.SUBMITTED: frozenset({S.IN_REVIEW, S.QUEUED, S.APPROVED, S.ARCHIVED}),
    # a requeued task leaves review for labelling (its Review step completed with "requeue")
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.SUBMITTED, S.QUEUED, S.ARCHIVED}),
    # rejected work goes back to labelling (rework)
    S.REJECTED: frozenset({S.QUEUED, S.LEASED, S.ARCHIVED}),
    S.APPROVED: frozenset({S.EXPORTED, S.IN_REVIEW, S.ARCHIVED}),
    # re-exporting is allowed; a re-opened task goes back to review
    S.EXPORTED: frozenset({S.EXPORTED, S.IN_REVIEW, S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.QUEUED}),
}

INITIAL = S.NEW


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: TaskStatus, target: TaskStatus) -> None:
    if not can_transition(current, target):
        allowed = sorted(TRANSITIONS[current])
        raise InvalidTransition(
            f"a task in status {current.value!r} cannot move to {target.value!r}",
            details={"from": current.value, "to": target.value, "allowed": allowed},
        )


def sources_of(target: TaskStatus) -> frozenset[TaskStatus]:
    """Every status a task may come from to reach ``target`` (for conditional updates)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


class WaitStep(StrEnum):
    """The workflow's human waits, named as the task state machine names their states."""

    LABEL = "Label"
    REVIEW = "Review"


# The statuses a task has while its execution waits in each step (an archived task keeps its wait).
WAITING_STATUSES: dict[WaitStep, frozenset[TaskStatus]] = {
    WaitStep.LABEL: frozenset({S.QUEUED, S.LEASED, S.ARCHIVED}),
    WaitStep.REVIEW: frozenset({S.IN_REVIEW, S.ARCHIVED}),
}


def waiting_step(
    status: TaskStatus, label_token: bool, review_token: bool, handoff: WaitStep | None = None
) -> WaitStep | None:
    """The step a task's execution waits in, from its status, the step tokens it holds and its
    undelivered ``handoff`` (a step whose result is committed waits until it is delivered); None
    when it waits in neither (between steps, or done). Review comes after Label: a task that
    holds both tokens waits in Review (its Label token is a used one)."""
    if handoff is not None and (label_token, review_token)[handoff is WaitStep.REVIEW]:
        return handoff
    if review_token and status in WAITING_STATUSES[WaitStep.REVIEW]:
        return WaitStep.REVIEW
    if label_token and status in WAITING_STATUSES[WaitStep.LABEL]:
        return WaitStep.LABEL
    return None
