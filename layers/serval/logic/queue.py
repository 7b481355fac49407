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
from serval.adapters import activity, dynamo, mapping, members, projects, tasks, workflow
from serval.adapters import annotations as annotation_store
from serval.adapters import quality as quality_store
from serval.adapters import queue as store
from serval.domain import agreement
from serval.domain import queue as domain
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus, check_transition
from serval.domain.models import Annotation, AnnotationCreate, Project, utcnow
from serval.domain.permissions import PROJECT_ACTIONS, Action
from serval.domain.results import Result, validate_results
from serval.errors import Conflict, LeaseNotHeld, ValidationFailed
from serval.settings import settings

S = TaskStatus
WORKFLOW = "workflow"
CONSENSUS = "consensus"
ATTEMPT_ROUNDS = 3  # fresh candidate windows read by one /next before it answers "nothing"
ASSIGNABLE = (S.NEW, S.PRELABELED, S.QUEUED, S.REJECTED)


def _system() -> Actor:
    return Actor.system(WORKFLOW)


def epoch_now() -> int:
    return int(time.time())


def _strings(value: Any) -> list[str]:
    return [str(v) for v in (value or [])]


def _time_key(item: Any) -> str:
    return keys.time_sort_key(str(item.created_at), str(item.task_id))


# ---- called by the workflow's steps ---------------------------------------------------------------


def enter_label(project_id: str, task_id: str, token: str, rework: int) -> None:
    """Label step: queue the task for labelling and keep the step's token. The same token again: no-op.

    On rework the task is offered first to its last annotator (it is assigned to them).
    """
    item = tasks.get_item(project_id, task_id)
    if item.label_token == token:
        return
    status = S(item.status)
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
    last = _strings(item.annotators)[-1:] if rework > 0 else []
    sets: dict[str, Any] = {
        "label_token": token,
        "rework": rework,
        "queue_key": key,
        "annotators": [],
        "round_annotation_ids": [],
    }
    if last:
        sets["assignee"] = last[0]
    change = store.Transition(
        project_id,
        task_id,
        status,
        S.QUEUED,
        key,
        _system(),
        "task.queue",
        set=sets,
        remove=("lease_owner", "lease_until", "reviewer"),
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


def enter_review(project_id: str, task_id: str, token: str) -> None:
    """Review step: put the task into the review queue and keep the step's token (idempotent)."""
    item = tasks.get_item(project_id, task_id)
    if item.review_token == token:
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
        set={"review_token": token},
        remove=("lease_owner", "lease_until", "reviewer"),
        condition="#ver = :ver",
        names={"#ver": "version"},
        values={":ver": int(item.version)},
    )
    try:
        store.apply(change)
    except store.Lost:
        if tasks.get_item(project_id, task_id).review_token != token:
            raise Conflict(f"task {task_id} changed while it entered review") from None


def mark_exported(project_id: str, task_id: str) -> None:
    """ExportRecord step: approved -> exported (already exported: no-op)."""
    item = tasks.get_item(project_id, task_id)
    if S(item.status) is S.EXPORTED:
        return
    change = store.Transition(
        project_id, task_id, S(item.status), S.EXPORTED, _time_key(item), _system(), "task.export"
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
        set={"accepted_by": CONSENSUS},
        audit_after={"accepted_by": CONSENSUS, "agreement": item.agreement},
    )
    try:
        store.apply(change)
    except store.Lost:
        if S(tasks.get_item(project_id, task_id).status) not in (S.APPROVED, S.EXPORTED):
            raise Conflict(f"task {task_id} changed while it was accepted by consensus") from None


# ---- annotators ---------------------------------------------------------------------------------


def next_task(project_id: str, actor: Actor) -> domain.Lease:
    """Lease the next task the caller may take; ``Lease(task=None)`` when there is none.

    With probability ``gold_rate`` a gold task the caller has not answered comes first.
    """
    from serval.logic import quality

    gold = quality.try_gold_lease(projects.get(project_id), actor)
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
                return domain.Lease(task=tasks.get(project_id, candidate.task_id), lease_until=until)
    return domain.Lease()


def _claim(project_id: str, candidate: store.Candidate, actor: Actor, until: int) -> bool:
    names = dict(store.ELIGIBLE_NAMES)
    values: dict[str, Any]
    if candidate.status is S.QUEUED:
        condition, values = "#g1sk = :seen", {":seen": candidate.gsi1sk}
    else:  # an expired lease, taken over
        condition, values = "#lease_until < :now", {":now": epoch_now()}
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


def _held(project_id: str, task_id: str, actor: Actor) -> Any:
    item = tasks.get_item(project_id, task_id)
    if S(item.status) is not S.LEASED or item.lease_owner != actor.user_id:
        raise LeaseNotHeld(
            f"you do not hold a lease on task {task_id}", details={"task_id": task_id, "status": item.status}
        )
    return item


def _gold_item(project_id: str, task_id: str) -> Any | None:
    """The task's item when it is a gold task (answered outside the workflow), else None."""
    item = tasks.get_item(project_id, task_id)
    return item if item.gold is not None else None


_HOLDER = "#owner = :me"
_HOLDER_NAMES = {"#owner": "lease_owner"}


def heartbeat(project_id: str, task_id: str, actor: Actor) -> domain.Lease:
    """Extend the caller's lease by ``LEASE_SECONDS`` from now."""
    gold = _gold_item(project_id, task_id)
    if gold is not None:
        from serval.logic import quality

        until = quality.heartbeat_gold(gold, actor)
        return domain.Lease(task=tasks.get(project_id, task_id), lease_until=until)
    _held(project_id, task_id, actor)
    until = epoch_now() + settings().LEASE_SECONDS
    change = store.Transition(
        project_id,
        task_id,
        S.LEASED,
        S.LEASED,
        keys.lease_sk(until, task_id),
        actor,
        "task.heartbeat",
        set={"lease_until": until},
        condition=_HOLDER,
        names=_HOLDER_NAMES,
        values={":me": actor.user_id},
        audit_after={"lease_until": until},
    )
    _apply_held(change, task_id)
    return domain.Lease(task=tasks.get(project_id, task_id), lease_until=until)


def release(project_id: str, task_id: str, actor: Actor, skip: bool = False) -> Any:
    """Give the task back to the queue (skip: and never offer it to the caller again)."""
    gold = _gold_item(project_id, task_id)
    if gold is not None:
        from serval.logic import quality

        quality.release_gold(gold, actor, skip)
        return tasks.get(project_id, task_id)
    item = _held(project_id, task_id, actor)
    change = store.Transition(
        project_id,
        task_id,
        S.LEASED,
        S.QUEUED,
        str(item.queue_key or _time_key(item)),
        actor,
        "task.skip" if skip else "task.release",
        remove=("lease_owner", "lease_until"),
        append={"skipped_by": [actor.user_id]} if skip else {},
        condition=_HOLDER,
        names=_HOLDER_NAMES,
        values={":me": actor.user_id},
    )
    _apply_held(change, task_id)
    return tasks.get(project_id, task_id)


def _apply_held(change: store.Transition, task_id: str, tx: dynamo.Tx | None = None) -> None:
    try:
        store.apply(change, tx)
    except store.Lost:
        raise LeaseNotHeld(f"you no longer hold the lease on task {task_id}") from None


def assign(project_id: str, task_id: str, user_id: str, actor: Actor) -> Any:
    """Reserve a task for a member who may annotate: only they are offered it."""
    role = members.role_of(project_id, user_id)
    if role is None or role not in PROJECT_ACTIONS[Action.TASK_LEASE]:
        raise ValidationFailed(
            "the assignee must be a project member who may annotate", details={"user_id": user_id}
        )
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
        raise ValidationFailed("the annotation does not fit the label configuration", details=problems)
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
    project = projects.get(project_id)
    config = project.label_config
    if request.label_config_version is not None and request.label_config_version != config.version:
        raise Conflict(
            f"the label configuration is at version {config.version}, not {request.label_config_version}",
            details={"current_version": config.version},
        )
    gold = _gold_item(project_id, task_id)
    if gold is not None:
        from serval.logic import quality

        return quality.submit_gold(project, gold, request, actor)
    item = _held(project_id, task_id, actor)
    annotation = new_annotation(project, item, list(request.results), actor, request.lead_time_s)
    annotators = [*_strings(item.annotators), actor.user_id]
    target = domain.round_target(len(set(annotators)), project.settings.overlap)
    round_ids = [*_strings(item.round_annotation_ids), annotation.annotation_id]
    tx = dynamo.Tx()
    add_annotation(tx, annotation)
    activity.add_annotation(tx, project_id, actor.user_id, annotation.created_at, annotation.lead_time_s)
    outcome: dict[str, Any] = {"annotation_ids": round_ids, "agreement": None, "needs_review": True}
    sets: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    if target is S.SUBMITTED and project.settings.overlap >= 2:
        value = round_agreement(project_id, task_id, _strings(item.round_annotation_ids), annotation)
        sets["agreement"] = value
        quality_store.add_agreement(tx, project_id, sorted(set(annotators)), value)
        below = value < project.settings.agreement_threshold
        outcome |= {"agreement": value, "needs_review": below}
        metrics = {"agreement_n": 1, "agreement_sum": value, "agreement_below": int(below)}
    change = store.Transition(
        project_id,
        task_id,
        S.LEASED,
        target,
        _time_key(item) if target is S.SUBMITTED else str(item.queue_key or _time_key(item)),
        actor,
        "task.submit",
        set=sets,
        remove=("lease_owner", "lease_until", "assignee"),
        append={"annotators": [actor.user_id], "round_annotation_ids": [annotation.annotation_id]},
        add={"annotation_count": 1},
        condition=_HOLDER,
        names=_HOLDER_NAMES,
        values={":me": actor.user_id},
        audit_after={"annotation_id": annotation.annotation_id} | sets,
        metrics=metrics,
    )
    _apply_held(change, task_id, tx)
    token = item.label_token
    if target is S.SUBMITTED and token:
        workflow.send_success(str(token), outcome)
        store.clear_token(project_id, task_id, "label_token", str(token))
    return domain.Submission(annotation=annotation, status=target)


def round_agreement(project_id: str, task_id: str, earlier_ids: list[str], last: Annotation) -> float:
    """The agreement of a round's annotations: the earlier ones (read back) and the one being submitted."""
    earlier = [annotation_store.get(project_id, task_id, a) for a in earlier_ids]
    return agreement.agreement([list(a.results) for a in [*earlier, last]])


def annotations_of(project_id: str, task_id: str) -> list[Annotation]:
    """Every annotation of a task (tests and the review screen)."""
    found: list[Annotation] = []
    cursor = None
    while True:
        page, cursor = annotation_store.list_for_task(project_id, task_id, 100, cursor)
        found += page
        if not cursor:
            return found
