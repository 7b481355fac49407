"""Bulk operations on tasks (tag, untag, set priority, archive, delete, assign, unassign,
requeue, accept predictions) as async jobs.

``start`` validates and queues the job (an ``Idempotency-Key`` returns the job it created
before). The worker (:func:`run`):

1. resolves the selection once into a work list in S3, and counts ids that are not tasks
   of this project as failed (an id of another project is never touched);
2. applies the operation in chunks of :data:`CHUNK`, checkpointing offset and counts on the
   job item after each; before the Lambda deadline it checkpoints, releases the job and
   raises JobPaused, so the next message resumes where this one stopped;
3. at the end writes ONE audit record for the job (counts, affected ids in S3).

Each operation is idempotent per task (a tag already there, a task already deleted or
archived, assigned to that user, free in the queue, or holding the job's accepted prediction
counts as done), so a chunk re-run after a crash never double-applies. Assign, requeue and
accept predictions reuse the queue's own changes (:mod:`serval.logic.queue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from serval import ids, keys
from serval.adapters import bulk as bulk_store
from serval.adapters import dynamo, projects
from serval.adapters import jobs as job_store
from serval.adapters import queue as queue_store
from serval.adapters import tasks as task_store
from serval.domain.actor import Actor
from serval.domain.bulk import (
    MAX_FAILURES_SHOWN,
    BulkCreate,
    BulkFailure,
    BulkJobView,
    BulkOperation,
    BulkParams,
    describe_failures,
    job_params,
    store_ids_in_s3,
)
from serval.domain.jobs import Job, JobCounts, JobKind, JobPaused
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import MAX_TAGS
from serval.errors import Conflict, IdempotencyKeyReused, InvalidTransition, NotFound, ValidationFailed
from serval.logic import jobs, queue, workflow
from serval.logic import projects as projects_logic

CHUNK = 500  # tasks between checkpoints
DEADLINE_MARGIN_S = 30.0
RETRIES = 3  # a task that keeps changing under the job counts as failed
PATCHES = (BulkOperation.TAG, BulkOperation.UNTAG, BulkOperation.SET_PRIORITY)  # batched per chunk
DELETED = "the task was deleted meanwhile"


def start(project_id: str, request: BulkCreate, actor: Actor, idempotency_key: str | None = None) -> Job:
    """Queue a bulk job; the same Idempotency-Key (per project) returns the job it created.
    An archived project takes none (409 ``project_archived``)."""
    projects_logic.active(project_id)
    if request.user_id is not None:
        queue.check_assignee(project_id, request.user_id)
    fingerprint = request.fingerprint()
    if idempotency_key:
        existing = _existing(project_id, idempotency_key, fingerprint)
        if existing is not None:
            return existing
    job = job_store.new(project_id, JobKind.BULK, {}, actor.user_id)
    ids_key = None
    if store_ids_in_s3(request):
        ids_key = keys.bulk_ids_key(project_id, job.job_id)
        bulk_store.put_json(ids_key, request.selection.task_ids)
    job.params = job_params(request, ids_key).model_dump(mode="json", exclude_none=True)

    def claim_key(tx: dynamo.Tx) -> None:
        if idempotency_key:
            bulk_store.add_key_claim(tx, project_id, idempotency_key, job.job_id, fingerprint)

    try:
        return jobs.submit(job, actor, f"task.bulk_{request.operation.value}.start", claim_key)
    except dynamo.TransactionCancelled:
        if idempotency_key:  # another request with this key won the race
            existing = _existing(project_id, idempotency_key, fingerprint)
            if existing is not None:
                return existing
        raise


def _existing(project_id: str, idempotency_key: str, fingerprint: str) -> Job | None:
    claimed = bulk_store.key_claim(project_id, idempotency_key)
    if claimed is None:
        return None
    job_id, claimed_fingerprint = claimed
    if claimed_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for another request", details={"job_id": job_id}
        )
    return job_store.get(project_id, job_id)


def view(project_id: str, job_id: str) -> BulkJobView:
    job = jobs.view(project_id, job_id, JobKind.BULK)
    p = bulk_store.progress(project_id, job_id)
    return BulkJobView(**job.model_dump(), processed=p.offset, total=p.total, failures=p.failures)


# ---- the worker ------------------------------------------------------------------------------


@dataclass
class _Chunk:
    done: int = 0
    failed_ids: list[str] = field(default_factory=list)
    failures: list[BulkFailure] = field(default_factory=list)

    def fail(self, task_id: str, reason: str) -> None:
        self.failed_ids.append(task_id)
        self.failures.append(BulkFailure(task_id=task_id, reason=reason))


def _params(job: Job) -> BulkParams:
    try:
        return BulkParams.model_validate(job.params)
    except ValidationError as exc:
        raise ValidationFailed(f"the bulk job's parameters are invalid: {exc.errors()[:3]}") from exc


def _requested_ids(job: Job, params: BulkParams) -> list[str]:
    s = params.selection
    if s.task_ids is not None:
        return s.task_ids
    if s.task_ids_key is not None:
        ids = bulk_store.get_json(s.task_ids_key)
        if ids is None:
            raise ValidationFailed("the bulk job's id list is missing", details={"key": s.task_ids_key})
        return [str(i) for i in ids]
    assert s.filter is not None
    return list(bulk_store.iter_selected(job.project_id, s.filter))


def _resolve(claim: job_store.Claim, params: BulkParams) -> tuple[list[str], JobCounts, list[BulkFailure]]:
    """The work list (ids of this project's tasks, deduplicated), written to S3, with the
    ids that are not tasks of this project counted as failed."""
    job = claim.job
    requested = list(dict.fromkeys(_requested_ids(job, params)))
    existing = task_store.existing_ids(job.project_id, requested)
    work = [t for t in requested if t in existing]
    missing = [t for t in requested if t not in existing]
    bulk_store.put_json(keys.bulk_work_key(job.project_id, job.job_id), work)
    if missing:
        bulk_store.put_json(keys.bulk_failed_key(job.project_id, job.job_id, 0) + ".missing", missing)
    failures = [BulkFailure(task_id=t, reason="no such task in this project") for t in missing]
    counts = JobCounts(done=0, failed=len(missing))
    bulk_store.checkpoint(claim, None, 0, len(work), counts, failures[:MAX_FAILURES_SHOWN])
    return work, counts, failures[:MAX_FAILURES_SHOWN]


def run(claim: job_store.Claim, time_left: Callable[[], float]) -> jobs.RunResult:
    job = claim.job
    params = _params(job)
    state = bulk_store.progress(job.project_id, job.job_id)
    if state.total is None:
        work, counts, failures = _resolve(claim, params)
        offset = 0
    else:
        work = [str(t) for t in bulk_store.get_json(keys.bulk_work_key(job.project_id, job.job_id)) or []]
        counts, failures, offset = job.counts, state.failures, state.offset
    apply = _operation(job, params)
    while offset < len(work):
        chunk_ids = work[offset : offset + CHUNK]
        outcome = _Chunk()
        if params.operation in PATCHES:
            _patch_chunk(job.project_id, params, chunk_ids, outcome)
        else:
            for task_id in chunk_ids:
                apply(task_id, outcome)
        if outcome.failed_ids:
            bulk_store.put_json(keys.bulk_failed_key(job.project_id, job.job_id, offset), outcome.failed_ids)
        counts = JobCounts(done=counts.done + outcome.done, failed=counts.failed + len(outcome.failed_ids))
        failures = (failures + outcome.failures)[:MAX_FAILURES_SHOWN]
        nxt = offset + len(chunk_ids)
        pause = nxt < len(work) and time_left() < DEADLINE_MARGIN_S
        bulk_store.checkpoint(claim, offset, nxt, len(work), counts, failures, release=pause)
        offset = nxt
        if pause:
            raise JobPaused(f"paused after {offset} of {len(work)} tasks", details={"job_id": job.job_id})
    failed = bulk_store.failed_ids(job.project_id, job.job_id)
    affected = [t for t in work if t not in failed]
    bulk_store.audit_once(
        claim,
        f"task.bulk_{params.operation.value}",
        counts,
        affected,
        after=params.model_dump(mode="json", exclude_none=True, exclude={"selection": {"task_ids"}}),
    )
    return jobs.RunResult(counts, None, describe_failures(counts.failed, failures))


Apply = Callable[[str, _Chunk], None]


def _operation(job: Job, params: BulkParams) -> Apply:
    op, project_id = params.operation, job.project_id
    if op is BulkOperation.DELETE:
        return lambda task_id, out: _delete(project_id, task_id, out)
    if op is BulkOperation.ARCHIVE:
        return lambda task_id, out: _archive(project_id, task_id, out)
    if op in (BulkOperation.ASSIGN, BulkOperation.UNASSIGN):
        return lambda task_id, out: _assign(project_id, params.user_id, task_id, out)
    if op is BulkOperation.REQUEUE:
        actor = Actor.system("jobs", on_behalf_of=job.created_by)
        return lambda task_id, out: _refusable(
            task_id, out, lambda: queue.requeue(project_id, task_id, actor)
        )
    if op is BulkOperation.ACCEPT_PREDICTIONS:
        project = projects.get(project_id)
        return lambda task_id, out: _refusable(
            task_id,
            out,
            lambda: queue.accept_prediction(
                project, task_id, ids.stable_id("a", job.job_id, task_id), job.created_by
            ),
        )
    return lambda task_id, out: _patch(project_id, params, task_id, out)


def _patch_chunk(project_id: str, params: BulkParams, task_ids: list[str], out: _Chunk) -> None:
    """Tag, untag or set priorities of a chunk: items read in batches, links written in batches;
    a task that changed meanwhile is retried on its own."""
    links: list[dict[str, Any]] = []
    for batch in dynamo.chunks(task_ids, task_store.BATCH_GET_LIMIT):
        items = task_store.get_items(project_id, batch)
        for task_id in batch:
            item = items.get(task_id)
            if item is None:
                out.fail(task_id, DELETED)
            elif _patch_item(params, item, out, links) is False:
                _patch(project_id, params, task_id, out)
    dynamo.batch_write(links)


def _patch_item(params: BulkParams, item: Any, out: _Chunk, links: list[dict[str, Any]] | None) -> bool:
    """One attempt; False when the task changed meanwhile."""
    current = list(item.tags or [])
    tags: list[str] | None = None
    if params.operation is BulkOperation.TAG:
        tags = list(dict.fromkeys(current + (params.tags or [])))
        if len(tags) > MAX_TAGS:
            out.fail(item.task_id, f"a task has at most {MAX_TAGS} tags")
            return True
    elif params.operation is BulkOperation.UNTAG:
        tags = [t for t in current if t not in (params.tags or [])]
    if task_store.set_tags_priority(item, tags=tags, priority=params.priority, deferred_links=links):
        out.done += 1
        return True
    return False


def _patch(project_id: str, params: BulkParams, task_id: str, out: _Chunk) -> None:
    """Tag, untag or set the priority: idempotent (the same values written again are a no-op)."""
    for _ in range(RETRIES):
        try:
            item = task_store.get_item(project_id, task_id)
        except NotFound:
            out.fail(task_id, DELETED)
            return
        if _patch_item(params, item, out, None):
            return
    out.fail(task_id, "the task kept changing; retry the operation")


def _delete(project_id: str, task_id: str, out: _Chunk) -> None:
    actor = Actor.system("jobs")
    for _ in range(RETRIES):
        try:
            # its execution ends, and a freed window slot is refilled (at most the window's size
            # of refill requests per job: only tasks with an open execution hold a slot)
            workflow.end_deleted(project_id, task_store.delete(project_id, task_id, actor, audited=False))
        except NotFound:  # deleted already (by an earlier run of this chunk, or meanwhile)
            pass
        except Conflict:
            continue
        out.done += 1
        return
    out.fail(task_id, "the task kept changing; retry the operation")


def _archive(project_id: str, task_id: str, out: _Chunk) -> None:
    for _ in range(RETRIES):
        try:
            task_store.transition(project_id, task_id, TaskStatus.ARCHIVED)
        except NotFound:
            out.fail(task_id, DELETED)
            return
        except InvalidTransition as exc:
            if exc.details.get("from") == TaskStatus.ARCHIVED.value:  # archived already
                out.done += 1
            else:
                out.fail(task_id, exc.message)
            return
        except Conflict:
            continue
        out.done += 1
        return
    out.fail(task_id, "the task kept changing; retry the operation")


def _assign(project_id: str, user_id: str | None, task_id: str, out: _Chunk) -> None:
    """Reserve the task for ``user_id`` as the single-task assign does (None: unassign, in any
    status); a task already reserved for them (or free, for unassign) counts as done."""
    try:
        item = task_store.get_item(project_id, task_id)
    except NotFound:
        out.fail(task_id, DELETED)
        return
    if item.assignee == user_id and (user_id is None or int(item.assigned_until or 0) > queue.epoch_now()):
        out.done += 1  # (an ended reservation for the same user is made again, so it lasts)
        return
    statuses = queue.ASSIGNABLE if user_id is not None else tuple(TaskStatus)
    actor = Actor.system("jobs")
    try:
        queue_store.set_assignee(project_id, task_id, user_id, statuses, actor, audited=False)
    except queue_store.Lost:
        allowed = ", ".join(s.value for s in queue.ASSIGNABLE)
        out.fail(task_id, f"a task in status {item.status} cannot be assigned (only {allowed})")
        return
    out.done += 1


def _sentence(detail: object) -> str:
    """A located problem's sentence (``domain.results.problem_details``), or the detail as text."""
    return str(detail["message"]) if isinstance(detail, dict) and "message" in detail else str(detail)


def _refusable(task_id: str, out: _Chunk, change: Callable[[], None]) -> None:
    """Apply one task's queue change; a refusal (or label config mismatch) fails it with the reason."""
    try:
        change()
    except NotFound:
        out.fail(task_id, DELETED)
    except ValidationFailed as exc:
        problems = "; ".join(_sentence(p) for p in exc.details) if isinstance(exc.details, list) else ""
        out.fail(task_id, f"{exc.message}: {problems}" if problems else exc.message)
    except Conflict as exc:
        out.fail(task_id, exc.message)
    else:
        out.done += 1
