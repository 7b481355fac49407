"""The review queue: reviewers lease tasks in review (never their own work) and approve or reject them.

A review lease uses the task's ``lease_owner``/``lease_until`` (a task in review has no
labelling lease) and moves its GSI1SK to ``L#<lease_until>#<task id>``: free tasks
(``lease_until`` 0) and expired review leases are one key range below now. The decision
completes the workflow's waiting Review step with ``{"decision", "comment"}``. A rejection
counts one ``review_rejections`` for each annotator of the round (``serval.adapters.quality``)
and keeps the comment and the round's annotation ids on the task (``last_rejection``) for the
rework's annotator to read (``serval.logic.task_detail``); an approval removes them.
"""

from __future__ import annotations

import random
from typing import Any

from serval import keys
from serval.adapters import dynamo, quality, tasks
from serval.adapters import queue as store
from serval.domain import queue as domain
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.handoffs import Delivery, Handoff
from serval.domain.lifecycle import TaskStatus, WaitStep
from serval.domain.limits import stored_json
from serval.domain.models import Rejection, utcnow
from serval.errors import LeaseNotHeld
from serval.logic import projects as projects_logic
from serval.logic import queue, task_detail
from serval.settings import settings

S = TaskStatus


def next_review(project_id: str, actor: Actor, grant: ProjectAccess | None = None) -> domain.Lease:
    """Lease the next task in review the caller did not annotate; ``Lease(task=None)`` when none."""
    projects_logic.active(project_id)
    me = actor.user_id
    for _ in range(queue.ATTEMPT_ROUNDS):
        now = queue.epoch_now()
        found = store.candidates(
            project_id, S.IN_REVIEW, me, domain.CANDIDATE_WINDOW, below=keys.lease_sk_below(now), review=True
        )
        if not found:
            break
        for candidate in found[:1] + random.sample(found[1:], len(found) - 1):
            until = queue.epoch_now() + settings().LEASE_SECONDS
            change = store.Transition(
                project_id,
                candidate.task_id,
                S.IN_REVIEW,
                S.IN_REVIEW,
                keys.lease_sk(until, candidate.task_id),
                actor,
                "review.lease",
                set={"lease_owner": me, "lease_until": until, "reviewer": me},
                condition=f"#g1sk = :seen AND {store.MAY_REVIEW}",
                names=store.MAY_REVIEW_NAMES,
                values={":seen": candidate.gsi1sk, ":me": me},
                audit_after={"lease_until": until},
            )
            try:
                store.apply(change)
            except store.Lost:
                continue
            return task_detail.lease(project_id, candidate.task_id, until, actor, grant)
    return domain.Lease()


def heartbeat(project_id: str, item: Any, actor: Actor, grant: ProjectAccess | None = None) -> domain.Lease:
    """Extend the caller's review lease on ``item`` by ``LEASE_SECONDS`` from now."""
    until = queue.epoch_now() + settings().LEASE_SECONDS
    task_id = str(item.task_id)
    store.apply_as_holder(
        item,
        actor,
        "review.heartbeat",
        keys.lease_sk(until, task_id),
        set={"lease_until": until},
        audit_after={"lease_until": until},
    )
    return task_detail.lease(project_id, task_id, until, actor, grant)


def release(item: Any, actor: Actor, skip: bool = False) -> None:
    """Give a review lease back: the task is free in the review queue again (skip: and never
    offered to the caller for review again)."""
    store.apply_as_holder(
        item,
        actor,
        "review.skip" if skip else "review.release",
        keys.lease_sk(0, str(item.task_id)),
        remove=("lease_owner", "lease_until", "reviewer"),
        append={"review_skipped_by": [actor.user_id]} if skip else {},
    )


def _rejection(item: Any, request: domain.ReviewDecision, actor: Actor) -> dict[str, Any]:
    """What the rework shows the annotator: the comment, who rejected, when, and which annotations."""
    return Rejection(
        comment=request.comment,
        reviewer=actor.user_id,
        rejected_at=utcnow(),
        annotation_ids=[str(a) for a in item.round_annotation_ids or []],
    ).model_dump()


def decide(
    project_id: str, task_id: str, request: domain.ReviewDecision, actor: Actor
) -> domain.ReviewOutcome:
    """Approve (optionally with an edit, kept as the reviewer's annotation) or reject a task in review.

    An approval records the annotation it accepts on the task (``accepted_annotation_id``): the
    edit, or else the round's answer. That is what dataset exports ship for the task.
    """
    project = projects_logic.active(project_id)
    item = tasks.get_item(project_id, task_id)  # 404 for an unknown task
    if S(item.status) is not S.IN_REVIEW or item.lease_owner != actor.user_id:
        raise LeaseNotHeld(
            f"you do not hold a review lease on task {task_id}",
            details={"task_id": task_id, "status": item.status},
        )
    approved = request.decision == "approve"
    edit = None
    tx = dynamo.Tx()
    if request.results is not None:
        edit = queue.new_annotation(project, item, list(request.results), actor)
        queue.add_annotation(tx, edit)
    target = S.APPROVED if approved else S.REJECTED
    accepted = (edit.annotation_id if edit else queue.round_answer(item)) if approved else None
    if not approved:
        quality.add_rejection(tx, project_id, sorted({str(a) for a in item.annotators or []}))
    token = item.review_token
    result = {"decision": "approved" if approved else "rejected", "comment": request.comment}
    pending = Handoff(WaitStep.REVIEW, result) if token else None
    change = store.Transition(
        project_id,
        task_id,
        S.IN_REVIEW,
        target,
        keys.time_sort_key(str(item.created_at), task_id),
        actor,
        "review.approve" if approved else "review.reject",
        set={"reviewer": actor.user_id}
        | ({"accepted_annotation_id": accepted} if accepted else {})
        | ({} if approved else {"last_rejection": stored_json(_rejection(item, request, actor))})
        | (store.handoff(project_id, task_id, pending, queue.epoch_now()) if pending else {}),
        remove=("lease_owner", "lease_until") + (("last_rejection",) if approved else ()),
        add={"annotation_count": 1} if edit else {},
        condition="#owner = :me",
        names={"#owner": "lease_owner"},
        values={":me": actor.user_id},
        audit_after={
            "comment": request.comment,
            "annotation_id": edit.annotation_id if edit else None,
            "accepted_annotation_id": accepted,
        },
        metrics=(
            {"review_approved": 1, "review_edited": int(edit is not None)}
            if approved
            else {"review_rejected": 1}
        ),
    )
    try:
        store.apply(change, tx)
    except store.Lost:
        raise LeaseNotHeld(f"you no longer hold the review lease on task {task_id}") from None
    if pending is not None and queue.hand_off(project_id, task_id, str(token), pending) is Delivery.STEP_GONE:
        raise queue.step_gone()
    return domain.ReviewOutcome(task_id=task_id, status=target, annotation=edit)
