"""Gold tasks and per-annotator quality (see docs/data-model.md, "Consensus, gold tasks and quality").

* A manager marks a ``new`` or ``queued`` task nobody is labelling as gold, with its known
  results. Its GSI1 entry moves to ``PROJECT#<pid>#GOLD``: out of every status partition, so
  out of the label queue and the workflow's backlog. Its status does not change; an execution
  already waiting at Label stays paused (its token is kept) until the gold mark is removed.
* ``/next`` first tries, with probability ``settings.gold_rate``, a gold task the caller has
  not answered and nobody leases (a Query of the gold partition). The lease is the task's
  ``lease_owner``/``lease_until``; its status stays as it is.
* A gold submission is validated like any, stored as an annotation, scored against the gold
  results (:func:`serval.domain.agreement.score`) and counted in the annotator's quality item
  (``gold_answered``, ``gold_score_sum``) in the same transaction; the caller joins
  ``gold_answered_by``. It completes no workflow step.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from serval import keys
from serval.adapters import activity as activity_store
from serval.adapters import dynamo, mapping, tasks
from serval.adapters import quality as store
from serval.adapters import queue as queue_store
from serval.domain import activity as activity_domain
from serval.domain import agreement
from serval.domain import queue as domain
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.lifecycle import TaskStatus
from serval.domain.limits import stored_json
from serval.domain.models import AnnotationCreate, Project
from serval.domain.results import Result, problem_details, validate_results
from serval.errors import Conflict, LeaseNotHeld, ValidationFailed
from serval.logic import activity as activity_logic
from serval.logic import projects as projects_logic
from serval.logic import task_detail
from serval.settings import settings

S = TaskStatus
GOLD_STATUSES = (S.NEW, S.QUEUED)
RESULTS = TypeAdapter(list[Result])


class GoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[Result] = Field(min_length=1, description="The known results, checked like an annotation.")


class GoldTask(BaseModel):
    task_id: str
    project_id: str
    gold: bool = Field(description="Whether the task is now gold.")
    results: list[Result] = Field(
        default_factory=list, description="Its known results (empty when not gold)."
    )
    answered: int = Field(default=0, description="Annotators who answered it.")


class AnnotatorQuality(BaseModel):
    user_id: str
    annotations: int = Field(description="Annotations in the day range (activity counters).")
    active_days: int = Field(description="Days in the range with at least one annotation.")
    throughput_per_day: float = Field(description="Annotations per day of the range.")
    gold_answered: int = Field(description="Gold tasks answered (all time).")
    gold_accuracy: float | None = Field(description="Mean score on gold tasks, 0..1; null without any.")
    agreement_rounds: int = Field(description="Consensus rounds (overlap >= 2) taken part in (all time).")
    mean_agreement: float | None = Field(
        description="Mean agreement of those rounds, 0..1; null without any."
    )
    review_rejections: int = Field(description="Rounds they annotated that a reviewer rejected (all time).")


class AnnotatorsReport(BaseModel):
    project_id: str
    since: date
    until: date
    annotators: list[AnnotatorQuality]


# ---- marking gold -------------------------------------------------------------------------------


def _gold_view(project_id: str, task_id: str) -> GoldTask:
    item = tasks.get_item(project_id, task_id)
    gold = item.gold
    return GoldTask(
        task_id=task_id,
        project_id=project_id,
        gold=gold is not None,
        results=RESULTS.validate_python(gold) if gold is not None else [],
        answered=len(item.gold_answered_by or []),
    )


def mark_gold(project_id: str, task_id: str, request: GoldRequest, actor: Actor) -> GoldTask:
    """Make a new or queued task nobody is labelling gold, with ``request.results`` as its answer."""
    project = projects_logic.active(project_id)
    item = tasks.get_item(project_id, task_id)
    text_length = mapping.task_from_item(item).primary_text_length()
    problems = validate_results(project.label_config, list(request.results), text_length)
    if problems:
        raise ValidationFailed(
            "the gold results do not fit the label configuration", details=problem_details(problems)
        )
    status = S(item.status)
    refused = Conflict(
        "only a new or queued task nobody is labelling can be gold",
        details={"allowed": [s.value for s in GOLD_STATUSES], "status": status.value},
    )
    if status not in GOLD_STATUSES:
        raise refused
    results = [r.model_dump(mode="json") for r in request.results]
    change = queue_store.Transition(
        project_id,
        task_id,
        status,
        status,
        str(item.GSI1SK),
        actor,
        "task.gold",
        set={"gold": stored_json(results)},
        condition="attribute_not_exists(#lo) AND (attribute_not_exists(#ann) OR size(#ann) = :zero)",
        names={"#lo": "lease_owner", "#ann": "annotators"},
        values={":zero": 0},
        audit_after={"gold": True},
        gsi1pk=keys.gold_gsi1pk(project_id),
    )
    try:
        queue_store.apply(change)
    except queue_store.Lost:
        raise refused from None
    return _gold_view(project_id, task_id)


def unmark_gold(project_id: str, task_id: str, actor: Actor) -> GoldTask:
    """Make a gold task ordinary again: back in its status partition (a paused execution resumes).

    Idempotent: on a task that is not gold it changes nothing but still records the request.
    """
    projects_logic.active(project_id)
    item = tasks.get_item(project_id, task_id)
    status = S(item.status)
    if item.gold is None:
        touch = queue_store.Transition(
            project_id,
            task_id,
            status,
            status,
            str(item.GSI1SK),
            actor,
            "task.ungold",
            condition="attribute_not_exists(#gold)",
            names={"#gold": "gold"},
            audit_after={"gold": False},
            gsi1pk=str(item.GSI1PK),
        )
        try:
            queue_store.apply(touch)
        except queue_store.Lost:
            raise Conflict("the task changed meanwhile; retry") from None
        return _gold_view(project_id, task_id)
    time_key = keys.time_sort_key(str(item.created_at), task_id)
    change = queue_store.Transition(
        project_id,
        task_id,
        status,
        status,
        str(item.queue_key or time_key) if status is S.QUEUED else time_key,
        actor,
        "task.ungold",
        remove=("gold", "gold_answered_by", "lease_owner", "lease_until"),
        condition="attribute_exists(#gold) AND (attribute_not_exists(#lo) OR #lu < :now)",
        names={"#gold": "gold", "#lo": "lease_owner", "#lu": "lease_until"},
        values={":now": _now()},
        audit_after={"gold": False},
    )
    try:
        queue_store.apply(change)
    except queue_store.Lost:
        raise Conflict("the gold task is leased by an annotator; try again later") from None
    return _gold_view(project_id, task_id)


# ---- answering gold -----------------------------------------------------------------------------


def _now() -> int:
    from serval.logic import queue

    return queue.epoch_now()


def try_gold_lease(project: Project, actor: Actor, grant: ProjectAccess | None = None) -> domain.Lease | None:
    """With probability ``gold_rate``, lease a gold task the caller has not answered; else None."""
    rate = project.settings.gold_rate
    if rate <= 0 or random.random() >= rate:
        return None
    project_id, me = project.project_id, actor.user_id
    found = store.gold_candidates(project_id, me, _now(), domain.CANDIDATE_WINDOW)
    for candidate in random.sample(found, len(found)):
        now = _now()
        until = now + settings().LEASE_SECONDS
        change = queue_store.Transition(
            project_id,
            candidate.task_id,
            S(candidate.status),
            S(candidate.status),
            candidate.gsi1sk,
            actor,
            "task.lease",
            set={"lease_owner": me, "lease_until": until},
            condition=store.GOLD_FREE,
            names=dict(store.GOLD_NAMES),
            values={":now": now, ":me": me},
            audit_after={"lease_until": until},
            gsi1pk=keys.gold_gsi1pk(project_id),
        )
        try:
            queue_store.apply(change)
        except queue_store.Lost:
            continue
        return task_detail.lease(project_id, candidate.task_id, until, actor, grant)
    return None


def _gold_held(item: Any, actor: Actor) -> None:
    if item.lease_owner != actor.user_id:
        raise LeaseNotHeld(
            f"you do not hold a lease on task {item.task_id}",
            details={"task_id": str(item.task_id), "status": item.status},
        )


def submit_gold(project: Project, item: Any, request: AnnotationCreate, actor: Actor) -> domain.Submission:
    """Score the lease holder's answer to a gold task and count it; no workflow step completes."""
    from serval.logic import queue

    _gold_held(item, actor)
    project_id, task_id = project.project_id, str(item.task_id)
    annotation = queue.new_annotation(project, item, list(request.results), actor, request.lead_time_s)
    value = agreement.score(RESULTS.validate_python(item.gold), list(annotation.results))
    tx = dynamo.Tx()
    queue.add_annotation(tx, annotation)
    activity_store.add_annotation(
        tx, project_id, actor.user_id, annotation.created_at, annotation.lead_time_s
    )
    store.add_gold(tx, project_id, actor.user_id, value)
    status = S(item.status)
    change = queue_store.Transition(
        project_id,
        task_id,
        status,
        status,
        str(item.GSI1SK),
        actor,
        "task.submit",
        remove=("lease_owner", "lease_until"),
        append={"gold_answered_by": [actor.user_id]},
        add={"annotation_count": 1},
        condition="#owner = :me AND attribute_exists(#gold)",
        names={"#owner": "lease_owner", "#gold": "gold"},
        values={":me": actor.user_id},
        audit_after={"annotation_id": annotation.annotation_id},
        gsi1pk=keys.gold_gsi1pk(project_id),
    )
    try:
        queue_store.apply(change, tx)
    except queue_store.Lost:
        raise LeaseNotHeld(f"you no longer hold the lease on task {task_id}") from None
    return domain.Submission(annotation=annotation, status=status)


def release_gold(item: Any, actor: Actor, skip: bool = False) -> None:
    """Give a gold lease back (skip: and never offer that gold task to the caller again)."""
    _gold_held(item, actor)
    queue_store.apply_as_holder(
        item,
        actor,
        "task.skip" if skip else "task.release",
        str(item.GSI1SK),
        remove=("lease_owner", "lease_until"),
        append={"gold_answered_by": [actor.user_id]} if skip else {},
        gsi1pk=keys.gold_gsi1pk(str(item.project_id)),
    )


def heartbeat_gold(item: Any, actor: Actor) -> int:
    """Extend a gold lease by ``LEASE_SECONDS`` from now; the new expiry."""
    _gold_held(item, actor)
    until = _now() + settings().LEASE_SECONDS
    queue_store.apply_as_holder(
        item,
        actor,
        "task.heartbeat",
        str(item.GSI1SK),
        set={"lease_until": until},
        audit_after={"lease_until": until},
        gsi1pk=keys.gold_gsi1pk(str(item.project_id)),
    )
    return until


# ---- the report ---------------------------------------------------------------------------------


def annotators(
    project_id: str, since: date | datetime | None = None, until: date | datetime | None = None
) -> AnnotatorsReport:
    """Per annotator: annotations and throughput in a day range (default: the last 30 days) from
    the activity counters, and gold accuracy, agreement and review rejections from the quality
    counters. Two Queries (one per counter kind), never a scan."""
    first, last, rows = activity_logic.project_counters(project_id, since, until)
    days = activity_domain.days_between(first, last)
    counts: dict[str, int] = {}
    active: dict[str, int] = {}
    for row in rows:
        counts[row.user_id] = counts.get(row.user_id, 0) + row.annotations
        active[row.user_id] = active.get(row.user_id, 0) + (1 if row.annotations else 0)
    quality = {q.user_id: q for q in store.read_all(project_id)}
    report: list[AnnotatorQuality] = []
    for user_id in sorted(set(counts) | set(quality)):
        q = quality.get(user_id) or store.QualityCounters(user_id=user_id)
        report.append(
            AnnotatorQuality(
                user_id=user_id,
                annotations=counts.get(user_id, 0),
                active_days=active.get(user_id, 0),
                throughput_per_day=round(counts.get(user_id, 0) / days, 3),
                gold_answered=q.gold_answered,
                gold_accuracy=round(q.gold_score_sum / q.gold_answered, 4) if q.gold_answered else None,
                agreement_rounds=q.agreement_n,
                mean_agreement=round(q.agreement_sum / q.agreement_n, 4) if q.agreement_n else None,
                review_rejections=q.review_rejections,
            )
        )
    return AnnotatorsReport(project_id=project_id, since=first, until=last, annotators=report)
