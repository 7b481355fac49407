"""The labelling queue: the workflow puts tasks in, annotators lease, heartbeat, release, skip and submit.

Semantics (see docs/data-model.md, "Queue and review"):

* ``/next`` reads a window of candidates at the head of the queued partition (and of expired
  leases), tries the head first and, when another caller won it, the rest in a random order of
  its own: racing callers spread over the window instead of fighting over one item. Each try is
  one conditional transaction, so a task is never leased to two callers at once.
* A lease lasts ``LEASE_SECONDS``; an expired lease is claimable by the next ``/next``.
* With ``overlap`` N, a task needs N distinct annotators; after each submit below N it goes back
  to the queue, and nobody labels it twice (``annotators``).
* On the N-th submit the workflow's waiting Label step completes with the round's annotations,
  their agreement (``serval.domain.agreement``, overlap >= 2; stored on the task and in each
  annotator's quality counters) and ``needs_review``: agreement below the project's
  ``agreement_threshold``, or always with overlap 1. Without review the workflow accepts the
  task by consensus (:func:`accept_consensus`).
"""

from __future__ import annotations

import random
import time
from typing import Any

from serval import ids, keys
from serval.adapters import activity, dynamo, mapping, members, projects, tasks, users, workflow
from serval.adapters import annotations as annotation_store
from serval.adapters import quality as quality_store
from serval.adapters import queue as store
from serval.domain import agreement, lifecycle
from serval.domain import queue as domain
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.handoffs import TOKEN_ATTRIBUTE, Delivery, Handoff
from serval.domain.lifecycle import TaskStatus, WaitStep, check_transition
from serval.domain.models import Annotation, AnnotationCreate, AnnotationSource, Prediction, Project, utcnow
from serval.domain.permissions import PROJECT_ACTIONS, Action
from serval.domain.results import Result, problem_details, validate_results
from serval.errors import Conflict, LeaseNotHeld, NotFound, TaskTokenInvalid, ValidationFailed
from serval.logic import projects as projects_logic
from serval.logic import task_detail
from serval.settings import settings

S = TaskStatus
WORKFLOW = "workflow"
CONSENSUS = "consensus"
ATTEMPT_ROUNDS = 3  # fresh candidate windows read by one /next before it answers "nothing"
ASSIGNABLE = (S.NEW, S.PRELABELED, S.QUEUED, S.REJECTED)
# What a step after the human waits removes: its execution has every result, so the used tokens
# and any handoff not yet cleared have done their work.
STEP_DONE = ("label_token", "review_token", *store.HANDOFF)


def _system() -> Actor:
    return Actor.system(WORKFLOW)


def epoch_now() -> int:
    return int(time.time())


def _strings(value: Any) -> list[str]:
    return [str(v) for v in (value or [])]


def _time_key(item: Any) -> str:
    return keys.time_sort_key(str(item.created_at), str(item.task_id))


# ---- called by the workflow's steps ---------------------------------------------------------------


def enter_label(project_id: str, task_id: str, token: str, rework: int, execution: str | None = None) -> None:
    """Label step: queue the task for labelling and keep the step's token (and the name of the
    ``execution`` that issued it). The same token again: no-op.

    On rework the task is offered first to its last annotator (it is reserved for them, for
    ``RESERVATION_SECONDS``, if they may still label in the project); a task requeued from
    review (see :func:`requeue`) comes from ``in_review`` and is free for anyone. A task that
    already waits in Label under another token (its execution was re-created, see
    :func:`serval.logic.workflow.resume`) keeps its place, lease and round: only the token changes.
    """
    item = tasks.get_item(project_id, task_id)
    if item.label_token == token:
        return
    status = S(item.status)
    if _take_over(item, WaitStep.LABEL, token, execution):
        return
    check_transition(status, S.QUEUED)
    project = projects.get(project_id)
    task = mapping.task_from_item(item)
    scores = [p.score for p in task.predictions]
    key = domain.queue_key(
        project.settings.priority_mode,
        task_id=task_id,
        created_at=str(item.created_at),
        priority=int(item.priority or 0),
        min_score=min(scores) if scores else None,
        position=(task.source.line or 0) if task.source else 0,
    )
    last = _strings(item.annotators)[-1:] if rework > 0 and status is S.REJECTED else []
    sets: dict[str, Any] = {
        "label_token": token,
        "execution_name": execution or task_id,
        "rework": rework,
        "queue_key": key,
        "annotators": [],
        "round_annotation_ids": [],
    }
    if last and assignable(project_id, last[0]) is None:
        sets |= store.reservation(project_id, task_id, last[0])
    change = store.Transition(
        project_id,
        task_id,
        status,
        S.QUEUED,
        key,
        _system(),
        "task.queue",
        set=sets,
        remove=("lease_owner", "lease_until", "reviewer", "review_token", *store.HANDOFF),
        condition="#ver = :ver",
        names={"#ver": "version"},
        values={":ver": int(item.version)},
        audit_after={"rework": rework, "assignee": sets.get("assignee")},
        gsi1pk=keys.gold_gsi1pk(project_id) if item.gold is not None else None,  # paused while gold
    )
    try:
        store.apply(change)
    except store.Lost:
        if tasks.get_item(project_id, task_id).label_token != token:
            raise Conflict(f"task {task_id} changed while it was being queued") from None


def enter_review(project_id: str, task_id: str, token: str, execution: str | None = None) -> None:
    """Review step: put the task into the review queue and keep the step's token and the name of
    the ``execution`` that issued it (idempotent). A task that already waits in Review under
    another token (a re-created execution) keeps its review lease: only the token changes."""
    item = tasks.get_item(project_id, task_id)
    if item.review_token == token:
        return
    if _take_over(item, WaitStep.REVIEW, token, execution):
        return
    status = S(item.status)
    change = store.Transition(
        project_id,
        task_id,
        status,
        S.IN_REVIEW,
        keys.lease_sk(0, task_id),
        _system(),
        "task.review",
        set={"review_token": token, "execution_name": execution or task_id},
        remove=("lease_owner", "lease_until", "reviewer", "label_token", *store.HANDOFF),
        condition="#ver = :ver",
        names={"#ver": "version"},
        values={":ver": int(item.version)},
    )
    try:
        store.apply(change)
    except store.Lost:
        if tasks.get_item(project_id, task_id).review_token != token:
            raise Conflict(f"task {task_id} changed while it entered review") from None


def waits_in(item: Any) -> WaitStep | None:
    """The step the task's execution waits in (by its status, the tokens it holds and its
    undelivered handoff), if any."""
    pending = Handoff.from_stored(item.handoff)
    return lifecycle.waiting_step(
        S(item.status), bool(item.label_token), bool(item.review_token), pending.step if pending else None
    )


def _take_over(item: Any, step: WaitStep, token: str, execution: str | None) -> bool:
    """If the task already waits in ``step`` under another token, hand the wait to ``token``:
    a re-created execution entering the step its task was left waiting in. False otherwise."""
    if waits_in(item) is not step:
        return False
    attribute = TOKEN_ATTRIBUTE[step]
    project_id, task_id = str(item.project_id), str(item.task_id)
    old = str(getattr(item, attribute))
    replaced = store.replace_token(project_id, task_id, attribute, old, token, execution or task_id)
    if not replaced and getattr(tasks.get_item(project_id, task_id), attribute) != token:
        raise Conflict(f"task {task_id} changed while its {step.value} step was taken over")
    return True


def mark_exported(project_id: str, task_id: str) -> None:
    """ExportRecord step: approved -> exported (already exported: no-op)."""
    item = tasks.get_item(project_id, task_id)
    if S(item.status) is S.EXPORTED:
        return
    change = store.Transition(
        project_id,
        task_id,
        S(item.status),
        S.EXPORTED,
        _time_key(item),
        _system(),
        "task.export",
        remove=STEP_DONE,
    )
    try:
        store.apply(change)
    except store.Lost:
        if S(tasks.get_item(project_id, task_id).status) is not S.EXPORTED:
            raise Conflict(f"task {task_id} changed while it was being exported") from None


def accept_consensus(project_id: str, task_id: str) -> None:
    """AcceptConsensus step: submitted -> approved without review (already approved or exported: no-op)."""
    item = tasks.get_item(project_id, task_id)
    if S(item.status) in (S.APPROVED, S.EXPORTED):
        return
    change = store.Transition(
        project_id,
        task_id,
        S(item.status),
        S.APPROVED,
        _time_key(item),
        _system(),
        "task.accept_consensus",
        set={"accepted_by": CONSENSUS, "accepted_annotation_id": round_answer(item)},
        remove=STEP_DONE,
        audit_after={
            "accepted_by": CONSENSUS,
            "agreement": item.agreement,
            "accepted_annotation_id": round_answer(item),
        },
    )
    try:
        store.apply(change)
    except store.Lost:
        if S(tasks.get_item(project_id, task_id).status) not in (S.APPROVED, S.EXPORTED):
            raise Conflict(f"task {task_id} changed while it was accepted by consensus") from None


def round_answer(item: Any) -> str | None:
    """The completed round's answer (recorded by its last submit; on tasks without one, the
    round's last annotation): what an approval without an edit accepts."""
    if item.answer_annotation_id:
        return str(item.answer_annotation_id)
    return next(iter(_strings(item.round_annotation_ids)[-1:]), None)


# ---- annotators ---------------------------------------------------------------------------------


def next_task(project_id: str, actor: Actor, grant: ProjectAccess | None = None) -> domain.Lease:
    """Lease the next task the caller may take; ``Lease(task=None)`` when there is none.

    With probability ``gold_rate`` a gold task the caller has not answered comes first.
    """
    from serval.logic import quality

    gold = quality.try_gold_lease(projects_logic.active(project_id), actor, grant)
    if gold is not None:
        return gold
    me = actor.user_id
    for _ in range(ATTEMPT_ROUNDS):
        now = epoch_now()
        found = store.candidates(
            project_id, S.LEASED, me, domain.CANDIDATE_WINDOW, below=keys.lease_sk_below(now)
        )
        found += store.candidates(project_id, S.QUEUED, me, domain.CANDIDATE_WINDOW)
        if not found:
            break
        order = found[:1] + random.sample(found[1:], len(found) - 1)
        for candidate in order:
            until = epoch_now() + settings().LEASE_SECONDS
            if _claim(project_id, candidate, actor, until):
                return task_detail.lease(project_id, candidate.task_id, until, actor, grant)
    return domain.Lease()


def _claim(project_id: str, candidate: store.Candidate, actor: Actor, until: int) -> bool:
    names = dict(store.ELIGIBLE_NAMES)
    values: dict[str, Any] = {":now": epoch_now()}
    if candidate.status is S.QUEUED:
        condition, values[":seen"] = "#g1sk = :seen", candidate.gsi1sk
    else:  # an expired lease, taken over
        condition = "#lease_until < :now"
        names["#lease_until"] = "lease_until"
    change = store.Transition(
        project_id,
        candidate.task_id,
        candidate.status,
        S.LEASED,
        keys.lease_sk(until, candidate.task_id),
        actor,
        "task.lease",
        set={"lease_owner": actor.user_id, "lease_until": until},
        condition=f"{condition} AND {store.ELIGIBLE}",
        names=names,
        values=values | {":me": actor.user_id},
        audit_after={"lease_until": until},
    )
    try:
        store.apply(change)
    except store.Lost:
        return False
    return True


def _held(item: Any, actor: Actor) -> Any:
    """``item`` when the caller holds its labelling lease; else 409 ``lease_not_held``."""
    if S(item.status) is not S.LEASED or item.lease_owner != actor.user_id:
        raise LeaseNotHeld(
            f"you do not hold a lease on task {item.task_id}",
            details={"task_id": item.task_id, "status": item.status},
        )
    return item


def _is_gold(item: Any) -> bool:
    """A gold task is answered outside the workflow (``serval.logic.quality``)."""
    return item.gold is not None


_HOLDER = "#owner = :me"
_HOLDER_NAMES = {"#owner": "lease_owner"}


def _reviewing(item: Any, actor: Actor) -> bool:
    """Whether the caller holds a review lease on the task."""
    return S(item.status) is S.IN_REVIEW and item.lease_owner == actor.user_id


def heartbeat(
    project_id: str, task_id: str, actor: Actor, grant: ProjectAccess | None = None
) -> domain.Lease:
    """Extend the caller's lease (labelling, review or gold) by ``LEASE_SECONDS`` from now."""
    item = tasks.get_item(project_id, task_id)
    if _is_gold(item):
        from serval.logic import quality

        projects_logic.active(project_id)
        until = quality.heartbeat_gold(item, actor)
        return task_detail.lease(project_id, task_id, until, actor, grant)
    projects_logic.active(project_id)
    if _reviewing(item, actor):
        from serval.logic import review

        return review.heartbeat(project_id, item, actor, grant)
    _held(item, actor)
    until = epoch_now() + settings().LEASE_SECONDS
    store.apply_as_holder(
        item,
        actor,
        "task.heartbeat",
        keys.lease_sk(until, task_id),
        set={"lease_until": until},
        audit_after={"lease_until": until},
    )
    return task_detail.lease(project_id, task_id, until, actor, grant)


def release(project_id: str, task_id: str, actor: Actor, skip: bool = False) -> Any:
    """Give the task back to its queue, labelling or review (skip: and never offer it to the
    caller again)."""
    item = tasks.get_item(project_id, task_id)
    if _is_gold(item):
        from serval.logic import quality

        quality.release_gold(item, actor, skip)
        return tasks.get(project_id, task_id)
    if _reviewing(item, actor):
        from serval.logic import review

        review.release(item, actor, skip)
        return tasks.get(project_id, task_id)
    _held(item, actor)
    _apply_held(
        _back_to_queue(project_id, item, actor, "task.skip" if skip else "task.release", skip), task_id
    )
    return tasks.get(project_id, task_id)


def _back_to_queue(
    project_id: str, item: Any, actor: Actor, action: str, skip: bool = False, requeue: bool = False
) -> store.Transition:
    """A leased task back to the queue, conditional on its lease holder being the one read
    (release, skip; requeue also drops the reservation and is audited by its bulk job)."""
    holder = str(item.lease_owner)
    return store.Transition(
        project_id,
        str(item.task_id),
        S.LEASED,
        S.QUEUED,
        str(item.queue_key or _time_key(item)),
        actor,
        action,
        remove=("lease_owner", "lease_until", *store.RESERVATION)
        if requeue
        else ("lease_owner", "lease_until"),
        append={"skipped_by": [holder]} if skip else {},
        condition=_HOLDER,
        names=_HOLDER_NAMES,
        values={":me": holder},
        audited=not requeue,
    )


def _apply_held(change: store.Transition, task_id: str, tx: dynamo.Tx | None = None) -> None:
    try:
        store.apply(change, tx)
    except store.Lost:
        raise LeaseNotHeld(f"you no longer hold the lease on task {task_id}") from None


def assignable(project_id: str, user_id: str) -> str | None:
    """Why a task cannot be reserved for ``user_id`` (not a member who may label, or a disabled
    account), or None."""
    role = members.role_of(project_id, user_id)
    if role is None or role not in PROJECT_ACTIONS[Action.TASK_LEASE]:
        return "the assignee must be a project member who may annotate"
    found = users.get_versioned(user_id, consistent=True)
    if found is not None and not found[0].enabled:
        return "the assignee's account is disabled"
    return None


def check_assignee(project_id: str, user_id: str) -> None:
    """422 unless ``user_id`` is an enabled project member who may annotate (single and bulk assign)."""
    reason = assignable(project_id, user_id)
    if reason is not None:
        raise ValidationFailed(reason, details={"user_id": user_id})


MAX_RELEASED = 1_000  # reservations one request releases; any beyond that end with their expiry


def release_reservations(user_id: str, actor: Actor, project_id: str | None = None) -> int:
    """Make the tasks reserved for ``user_id`` (in ``project_id``, or in every project) free for
    anyone: the member was removed, may no longer label, or was disabled. Each release is
    conditional on the task still being reserved for them, and audited (``task.unassign``).
    Returns how many were released; a reservation this misses (more than
    :data:`MAX_RELEASED`, or one made while this ran) still ends at its ``assigned_until``."""
    released = 0
    for project, task_id in store.reserved_for(user_id, project_id):
        if released >= MAX_RELEASED:
            break
        try:
            store.set_assignee(project, task_id, None, tuple(S), actor, held_by=user_id)
        except store.Lost:  # reserved for someone else, or deleted, meanwhile
            continue
        released += 1
    return released


def assign(project_id: str, task_id: str, user_id: str, actor: Actor) -> Any:
    """Reserve a task for a member who may annotate: only they are offered it."""
    projects_logic.active(project_id)
    check_assignee(project_id, user_id)
    tasks.get_item(project_id, task_id)  # 404 for an unknown task
    try:
        store.set_assignee(project_id, task_id, user_id, ASSIGNABLE, actor)
    except store.Lost:
        raise Conflict(
            "only a task that is not being labelled or done can be assigned",
            details={"allowed": [s.value for s in ASSIGNABLE]},
        ) from None
    return tasks.get(project_id, task_id)


def new_annotation(
    project: Project, task: Any, results: list[Result], actor: Actor, lead_time_s: float = 0.0
) -> Annotation:
    """An annotation validated against the project's label configuration (422 when it does not fit)."""
    config = project.label_config
    problems = validate_results(config, list(results), mapping.task_from_item(task).primary_text_length())
    if problems:
        raise ValidationFailed(
            "the annotation does not fit the label configuration", details=problem_details(problems)
        )
    return Annotation(
        annotation_id=ids.new_id("a"),
        task_id=str(task.task_id),
        project_id=project.project_id,
        author=actor.user_id,
        results=results,
        lead_time_s=lead_time_s,
        label_config_version=config.version,
        created_at=utcnow(),
    )


def add_annotation(tx: dynamo.Tx, annotation: Annotation) -> None:
    m = dynamo.tasks()
    tx.put(m.AnnotationItem(**mapping.annotation_to_attrs(annotation)), condition="attribute_not_exists(PK)")


def submit(project_id: str, task_id: str, request: AnnotationCreate, actor: Actor) -> domain.Submission:
    """The lease holder's annotation; the task is submitted once ``overlap`` people labelled it."""
    project = projects_logic.active(project_id)
    config = project.label_config
    if request.label_config_version is not None and request.label_config_version != config.version:
        raise Conflict(
            f"the label configuration is at version {config.version}, not {request.label_config_version}",
            details={"current_version": config.version},
        )
    item = tasks.get_item(project_id, task_id)  # one read decides gold, lease and round
    if _is_gold(item):
        from serval.logic import quality

        return quality.submit_gold(project, item, request, actor)
    _held(item, actor)
    annotation = new_annotation(project, item, list(request.results), actor, request.lead_time_s)
    target = _record(project, item, annotation, actor)
    return domain.Submission(annotation=annotation, status=target)


def _record(project: Project, item: Any, annotation: Annotation, actor: Actor, *, human: bool = True) -> S:
    """Store the lease holder's annotation and move the task on; the round's last annotation
    completes the workflow's Label step. Shared by submit and accepted predictions
    (``human=False``): a prediction completes the round on its own, counts toward nobody's
    overlap, activity or agreement, always asks for review, and is not audited per task (the
    bulk job writes one record)."""
    project_id, task_id = project.project_id, str(item.task_id)
    me = [actor.user_id] if human else []
    annotators = [*_strings(item.annotators), *me]
    target = domain.round_target(len(set(annotators)), project.settings.overlap) if human else S.SUBMITTED
    round_ids = [*_strings(item.round_annotation_ids), annotation.annotation_id]
    tx = dynamo.Tx()
    add_annotation(tx, annotation)
    if human:
        activity.add_annotation(tx, project_id, actor.user_id, annotation.created_at, annotation.lead_time_s)
    outcome: dict[str, Any] = {"annotation_ids": round_ids, "agreement": None, "needs_review": True}
    sets: dict[str, Any] = {"answer_annotation_id": annotation.annotation_id} if target is S.SUBMITTED else {}
    metrics: dict[str, float] = {}
    token = item.label_token
    if human and target is S.SUBMITTED and project.settings.overlap >= 2:
        value, answer = _round_outcome(project_id, task_id, _strings(item.round_annotation_ids), annotation)
        sets |= {"agreement": value, "answer_annotation_id": answer}
        quality_store.add_agreement(tx, project_id, sorted(set(annotators)), value)
        below = value < project.settings.agreement_threshold
        outcome |= {"agreement": value, "needs_review": below}
        metrics = {"agreement_n": 1, "agreement_sum": value, "agreement_below": int(below)}
    pending = Handoff(WaitStep.LABEL, outcome) if target is S.SUBMITTED and token else None
    outbox = store.handoff(project_id, task_id, pending, epoch_now()) if pending else {}
    change = store.Transition(
        project_id,
        task_id,
        S.LEASED,
        target,
        _time_key(item) if target is S.SUBMITTED else str(item.queue_key or _time_key(item)),
        actor,
        "task.submit",
        set=sets | outbox,
        remove=("lease_owner", "lease_until", *store.RESERVATION),
        append={"annotators": me, "round_annotation_ids": [annotation.annotation_id]},
        add={"annotation_count": 1},
        condition=_HOLDER,
        names=_HOLDER_NAMES,
        values={":me": actor.user_id},
        audit_after={"annotation_id": annotation.annotation_id} | sets,
        metrics=metrics,
        audited=human,
    )
    _apply_held(change, task_id, tx)
    if pending is not None:
        delivered = hand_off(project_id, task_id, str(token), pending)
        if delivered is Delivery.STEP_GONE and human:
            raise step_gone()
    return target


def step_gone() -> TaskTokenInvalid:
    return TaskTokenInvalid(
        "this step of the task's workflow is no longer waiting (already completed or timed out); "
        "the change is kept and its workflow is repaired",
        details={"reason": "step_gone"},
    )


def hand_off(project_id: str, task_id: str, token: str, pending: Handoff) -> Delivery:
    """Give the waiting step that issued ``token`` the committed ``pending`` result; once it has
    it, the token and the handoff go from the task. Otherwise the handoff stays in the task's
    outbox, for the reconciler (:mod:`serval.logic.reconcile`)."""
    delivered = workflow.deliver(token, pending.output)
    if delivered is Delivery.DELIVERED:
        store.forget_token(project_id, task_id, pending.token_attribute, token)
    return delivered


def _round_outcome(
    project_id: str, task_id: str, earlier_ids: list[str], last: Annotation
) -> tuple[float, str]:
    """The agreement of a round's annotations (the earlier ones, read back, and the one being
    submitted) and its answer: the annotation that agrees best with the others."""
    round_ = [*(annotation_store.get(project_id, task_id, a) for a in earlier_ids), last]
    results = [list(a.results) for a in round_]
    return agreement.agreement(results), round_[agreement.representative(results)].annotation_id


def annotations_of(project_id: str, task_id: str) -> list[Annotation]:
    """Every annotation of a task (tests and the review screen)."""
    found: list[Annotation] = []
    cursor = None
    while True:
        page, cursor = annotation_store.list_for_task(project_id, task_id, 100, cursor)
        found += page
        if not cursor:
            return found


# ---- managers' bulk changes: requeue, accept predictions (audited once per job) ---------------

CHANGE_ATTEMPTS = 3  # a task that keeps changing under a manager's change is refused
REQUEUE = "requeue"  # the Review step's decision that sends a task back to Label (no rework round)
REQUEUE_HOLDER = "system:requeue"  # holds a task in review while its Review step is completed
HOLD_UNTIL = 999_999_999_999  # the hold's lease_until: out of every reviewer's key range
PREDICTIONS = "predictions"

_NOT_REQUEUED = {
    S.NEW: "the task's workflow has not queued it yet; it joins the queue when it does",
    S.PRELABELED: "the task's workflow has not queued it yet; it joins the queue when it does",
    S.SUBMITTED: "the task's labelling round is complete and its workflow is moving it on; retry later",
    S.REJECTED: "a rejected task is sent back to labelling by its workflow (or was escalated)",
    S.APPROVED: "the task is approved: its workflow has finished with labelling",
    S.EXPORTED: "the task is exported: its workflow has ended",
    S.ARCHIVED: "the task is archived",
}


def _kept_changing(task_id: str) -> Conflict:
    return Conflict(f"task {task_id} kept changing; retry the operation", details={"task_id": task_id})


def _not_gold(item: Any) -> None:
    if item.gold is not None:
        raise Conflict("a gold task is answered outside the workflow", details={"task_id": item.task_id})


def requeue(project_id: str, task_id: str, actor: Actor) -> None:
    """Send a task back to the labelling queue, free for any annotator (idempotent).

    ``queued``: its reservation goes (already free: nothing to do). ``leased``: the lease and
    any reservation go, as on release (the holder's submit is then refused with
    ``lease_not_held``). ``in_review``: the workflow's Review step completes with the decision
    ``requeue``, which goes back to Label without counting a rework round; the Label step then
    queues the task (a reviewer's lease goes). Any other status raises Conflict with the reason.
    """
    for _ in range(CHANGE_ATTEMPTS):
        item = tasks.get_item(project_id, task_id)
        _not_gold(item)
        status = S(item.status)
        try:
            if status is S.QUEUED:
                if item.assignee:
                    store.apply(_unreserve(project_id, item, actor))
                return
            if status is S.LEASED:
                store.apply(_back_to_queue(project_id, item, actor, "task.requeue", requeue=True))
                return
            if status is S.IN_REVIEW:
                _requeue_from_review(project_id, item, actor)
                return
        except store.Lost:
            continue
        raise Conflict(_NOT_REQUEUED[status], details={"status": status.value})
    raise _kept_changing(task_id)


def _unreserve(project_id: str, item: Any, actor: Actor) -> store.Transition:
    return store.Transition(
        project_id,
        str(item.task_id),
        S.QUEUED,
        S.QUEUED,
        str(item.GSI1SK),
        actor,
        "task.requeue",
        remove=store.RESERVATION,
        condition="#ver = :ver",
        names={"#ver": "version"},
        values={":ver": int(item.version)},
        audited=False,
    )


def _requeue_from_review(project_id: str, item: Any, actor: Actor) -> None:
    """Hold the task (no reviewer can lease or decide it) with the Review step's ``requeue``
    result in its outbox, then hand the step that result; a re-run finds the hold and hands it
    again. A result the step could not take stays in the outbox, for the reconciler."""
    task_id, token = str(item.task_id), item.review_token
    if not token:
        if item.lease_owner == REQUEUE_HOLDER:
            return  # sent already: the Label step queues the task
        raise Conflict("the task is in review but no Review step waits for it", details={"task_id": task_id})
    pending = Handoff(WaitStep.REVIEW, {"decision": REQUEUE, "comment": None})
    if item.lease_owner != REQUEUE_HOLDER:
        hold = store.Transition(
            project_id,
            task_id,
            S.IN_REVIEW,
            S.IN_REVIEW,
            keys.lease_sk(HOLD_UNTIL, task_id),
            actor,
            "task.requeue",
            set={"lease_owner": REQUEUE_HOLDER, "lease_until": HOLD_UNTIL}
            | store.handoff(project_id, task_id, pending, epoch_now()),
            remove=("reviewer",),
            condition="#token = :token",
            names={"#token": "review_token"},
            values={":token": str(token)},
            audited=False,
        )
        store.apply(hold)
    hand_off(project_id, task_id, str(token), pending)


def accept_prediction(project: Project, task_id: str, annotation_id: str, accepted_by: str) -> None:
    """Accept the task's best prediction (highest score) as its annotation, as a submit would.

    The task must wait in the Label step and not be leased by an annotator (an expired lease
    is taken over). The system leases it, then the submit path stores the annotation (id
    ``annotation_id``, put conditionally: never twice), completes the round on its own and
    the Label step with ``needs_review`` true. Refusals raise Conflict; a prediction that does
    not fit the label configuration raises ValidationFailed. A re-run after the annotation was
    stored only completes the Label step if that is still outstanding.
    """
    project_id = project.project_id
    system = Actor.system(PREDICTIONS, on_behalf_of=accepted_by)
    for _ in range(CHANGE_ATTEMPTS):
        item = tasks.get_item(project_id, task_id)
        if annotation_id in _strings(item.round_annotation_ids) or _stored(
            project_id, task_id, annotation_id
        ):
            _finish_accepted(project_id, item, annotation_id)
            return
        _not_gold(item)
        prediction = _best_prediction(item)
        annotation = new_annotation(project, item, list(prediction.results), system).model_copy(
            update={
                "annotation_id": annotation_id,
                "source": AnnotationSource.PREDICTION,
                "model_version": prediction.model_version,
                "accepted_by": accepted_by,
            }
        )
        try:
            if item.lease_owner != system.user_id:
                _lease_for(project_id, item, system)
                item = tasks.get_item(project_id, task_id)
            _record(project, item, annotation, system, human=False)
            return
        except (store.Lost, LeaseNotHeld, dynamo.TransactionCancelled):
            continue
    raise _kept_changing(task_id)


def _stored(project_id: str, task_id: str, annotation_id: str) -> bool:
    try:
        annotation_store.get(project_id, task_id, annotation_id)
    except NotFound:
        return False
    return True


def _finish_accepted(project_id: str, item: Any, annotation_id: str) -> None:
    """The prediction was stored by an earlier run: hand the Label step the round's result if
    it is still in the task's outbox (what the step cannot take stays there, for the reconciler)."""
    pending, token = Handoff.from_stored(item.handoff), item.label_token
    if pending is None or not token or annotation_id not in _strings(item.round_annotation_ids):
        return
    hand_off(project_id, str(item.task_id), str(token), pending)


def _best_prediction(item: Any) -> Prediction:
    predictions = mapping.task_from_item(item).predictions
    if not predictions:
        raise Conflict("the task has no predictions", details={"task_id": item.task_id})
    return max(predictions, key=lambda p: p.score)


def _lease_for(project_id: str, item: Any, system: Actor) -> None:
    """Lease a task waiting in the Label step for the system (queued, or an expired lease)."""
    status, task_id = S(item.status), str(item.task_id)
    if status not in (S.QUEUED, S.LEASED) or not item.label_token:
        raise Conflict(
            f"the task is {status.value}, not waiting for labelling", details={"status": status.value}
        )
    if status is S.LEASED and int(item.lease_until or 0) >= epoch_now():
        raise Conflict(
            f"the task is leased by an annotator ({item.lease_owner})", details={"status": status.value}
        )
    until = epoch_now() + settings().LEASE_SECONDS
    change = store.Transition(
        project_id,
        task_id,
        status,
        S.LEASED,
        keys.lease_sk(until, task_id),
        system,
        "task.lease",
        set={"lease_owner": system.user_id, "lease_until": until},
        condition="#ver = :ver",
        names={"#ver": "version"},
        values={":ver": int(item.version)},
        audited=False,
    )
    store.apply(change)
