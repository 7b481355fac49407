"""Async jobs: submit (API side) and run (jobs worker side), for every kind.

Submitting writes the queued job with its audit record in one transaction, then sends
its message to the jobs queue. If the message cannot be sent, the job is marked failed at
once, so no job waits forever for a message that never comes.

Running a message:

- a body that is not a job message, or names no job, is *poison*: reported, never retried;
- a finished job is skipped (redelivery is idempotent: a succeeded job never runs twice);
- a job another worker is running raises JobBusy (the message comes back later);
- otherwise the job is claimed (``queued -> running``) and its kind's runner produces the
  result; a runner's ServalError (but Throttled) or an unknown kind fails the job with that
  error. An error a retry may mend (throttling, a 5xx answer, a network fault:
  :func:`serval.adapters.clients.retryable`) propagates so SQS redelivers the message, up to
  the last attempt, which fails the job; any other error (a bug, data the runner cannot
  handle) fails the job at once with its reason instead of waiting out the queue's
  visibility timeout three times. A worker that crashes or times out on every delivery
  never gets here: its message's last delivery lands in the jobs DLQ, whose consumer
  (:func:`fail_dead_letter`) fails the job;
- a runner that fans its job out (JobFannedOut: a large dataset export) leaves it running;
  the ``shard`` and ``assemble`` messages it sent are run by
  :mod:`serval.logic.export_fanout`, which finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from serval.adapters import clients, dynamo, queues
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.jobs import (
    Job,
    JobCounts,
    JobFannedOut,
    JobKind,
    JobMessage,
    JobPaused,
    JobStatus,
    JobStep,
    JobView,
)
from serval.errors import NotFound, ServalError, Throttled
from serval.settings import settings

LEASE_SECONDS = 16 * 60  # longer than the jobs function's 15-minute timeout
MAX_ATTEMPTS = 3  # the jobs queue's maxReceiveCount (infra/spec.py): the last delivery fails the job


@dataclass(frozen=True)
class RunResult:
    counts: JobCounts
    result_key: str | None
    error: str | None = None  # what failed, for a job that succeeded with counts.failed > 0


class OutcomeKind(StrEnum):
    """What became of a jobs-queue message (or of a jobs-DLQ message: failed, skipped, poison)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # the job had finished already
    POISON = "poison"  # a message no delivery can handle: logged and dropped
    PAUSED = "paused"  # checkpointed; a new message continues it
    FANNED_OUT = "fanned_out"  # the parts it queued finish the job
    GATHERED = "gathered"  # a dataset export's shard, counted in


@dataclass
class Outcome:
    kind: OutcomeKind
    detail: dict[str, Any] = field(default_factory=dict)


Runner = Callable[[job_store.Claim, Callable[[], float]], RunResult]


def runner_for(kind: JobKind) -> Runner | None:
    """The function that runs jobs of ``kind`` (imported on use: a worker loads only what it runs)."""
    if kind is JobKind.AUDIT_EXPORT:
        from serval.logic import audit_export

        return audit_export.run
    if kind is JobKind.DATASET_EXPORT:
        from serval.logic import dataset_export

        return dataset_export.run
    if kind is JobKind.BULK:
        from serval.logic import bulk

        return bulk.run
    return None


def submit(job: Job, actor: Actor, audit_action: str, also: Callable[[dynamo.Tx], None] | None = None) -> Job:
    """Create a queued job (with its audit record) and announce it on the jobs queue.

    ``also`` adds actions to the create transaction (see :func:`serval.adapters.jobs.create`).
    """
    job_store.create(job, actor, audit_action, also)
    message = JobMessage(job_id=job.job_id, project_id=job.project_id)
    try:
        queues.send(
            settings().JOBS_QUEUE_URL,
            message.model_dump_json(exclude_defaults=True),
            {"kind": job.kind.value},
        )
    except Exception as exc:  # any failure to enqueue: the job must not stay queued forever
        job_store.fail(job.project_id, job.job_id, f"the job could not be queued: {type(exc).__name__}")
        raise Throttled("the job could not be queued; retry shortly", details={"job_id": job.job_id}) from exc
    return job


def view(project_id: str, job_id: str, kind: JobKind) -> JobView:
    """A job of ``kind`` as the API shows it, with a presigned link to its result when it succeeded."""
    job = job_store.get(project_id, job_id)
    if job.kind is not kind:
        raise NotFound(f"job {job_id} not found", details={"job_id": job_id})
    url = None
    if job.status is JobStatus.SUCCEEDED and job.result_key:
        from serval.adapters import storage

        cfg = settings()
        url = storage.presigned_get(cfg.EXPORT_BUCKET, job.result_key, cfg.PRESIGN_SECONDS)
    return JobView(**job.model_dump(), download_url=url)


def parse_message(body: str) -> JobMessage | None:
    try:
        return JobMessage.model_validate_json(body)
    except ValidationError:
        return None


def process_message(body: str, time_left: Callable[[], float]) -> Outcome:
    """Run the job one jobs-queue message names (see the module doc)."""
    message = parse_message(body)
    if message is None:
        return Outcome(OutcomeKind.POISON, {"reason": "the message is not a job message", "body": body[:200]})
    if message.step is not JobStep.RUN:  # a step of a fanned-out dataset export
        from serval.logic import export_fanout

        return export_fanout.process_step(message, time_left)
    ids = {"job_id": message.job_id, "project_id": message.project_id}
    try:
        claim = job_store.claim(message.project_id, message.job_id, LEASE_SECONDS)
    except NotFound:
        return Outcome(OutcomeKind.POISON, {"reason": "no such job", **ids})
    except (ValueError, ValidationError) as exc:  # a job item this worker cannot read (unknown kind...)
        error = f"the job is invalid: {str(exc)[:300]}"
        job_store.fail(message.project_id, message.job_id, error)
        return Outcome(OutcomeKind.POISON, {"reason": error, **ids})
    if claim is None:
        return Outcome(OutcomeKind.SKIPPED, {"reason": "the job already finished", **ids})
    runner = runner_for(claim.job.kind)
    if runner is None:
        error = f"no runner for jobs of kind {claim.job.kind.value}"
        job_store.fail(message.project_id, message.job_id, error, owner=claim.owner)
        return Outcome(OutcomeKind.POISON, {"reason": error, **ids})
    try:
        result = runner(claim, time_left)
    except JobPaused:  # the runner checkpointed and released the job: continue in a new message
        body = message.model_dump_json(exclude_defaults=True)
        queues.send(settings().JOBS_QUEUE_URL, body, {"kind": claim.job.kind.value})
        return Outcome(OutcomeKind.PAUSED, {"kind": claim.job.kind.value, **ids})
    except JobFannedOut as exc:  # the parts it queued finish the job
        return Outcome(OutcomeKind.FANNED_OUT, {"kind": claim.job.kind.value, **ids, **(exc.details or {})})
    except ServalError as exc:
        if isinstance(exc, Throttled):
            return _retry_or_fail(claim, exc)
        job_store.fail(message.project_id, message.job_id, exc.message, owner=claim.owner)
        return Outcome(
            OutcomeKind.FAILED, {"error": exc.message, "code": exc.code, "kind": claim.job.kind.value, **ids}
        )
    except Exception as exc:
        return _retry_or_fail(claim, exc)
    job = job_store.succeed(claim, result.counts, result.result_key, result.error)
    return Outcome(
        OutcomeKind.SUCCEEDED,
        {"kind": job.kind.value, "done": job.counts.done, "failed": job.counts.failed, **ids},
    )


def give_up_reason(exc: Exception, attempts: int) -> str | None:
    """Why an error a runner raised (not a ServalError, except Throttled) fails its job now;
    ``None``: a retry may mend it and attempts are left, so the message is redelivered."""
    if isinstance(exc, Throttled) or clients.retryable(exc):
        return None if attempts < MAX_ATTEMPTS else f"gave up after {attempts} attempts: {type(exc).__name__}"
    return f"failed with an error that a retry cannot fix: {type(exc).__name__}: {str(exc)[:300]}"


def _retry_or_fail(claim: job_store.Claim, exc: Exception) -> Outcome:
    """Re-raise an error a retry may mend (SQS redelivers) before the last attempt; else fail the job."""
    error = give_up_reason(exc, claim.job.attempts)
    if error is None:
        raise exc
    job_store.fail(claim.job.project_id, claim.job.job_id, error, owner=claim.owner)
    return Outcome(
        OutcomeKind.FAILED,
        {
            "error": error,
            "kind": claim.job.kind.value,
            "job_id": claim.job.job_id,
            "project_id": claim.job.project_id,
        },
    )


# ---- the jobs DLQ: a message whose every delivery crashed or timed out ----------------------


def dead_letter_reason(message: JobMessage) -> str:
    """Why a dead-lettered message's job failed, naming the step that never finished."""
    if message.step is JobStep.SHARD and message.shard is not None:
        what = f"shard {message.shard + 1} of {message.shards} of the export"
    elif message.step is JobStep.ASSEMBLE:
        what = "assembling the export"
    else:
        what = "the job"
    return (
        f"{what} did not finish in any of its {MAX_ATTEMPTS} deliveries: "
        "the jobs worker crashed or timed out each time"
    )


def fail_dead_letter(body: str, attributes: dict[str, str]) -> Outcome:
    """A jobs message's last delivery landed in the jobs DLQ: fail its job with the reason (a job
    that finished meanwhile is left alone), then keep the message in ``JOBS_DEAD_URL`` with
    its outcome. An error before the message is kept raises, so SQS delivers it again; the
    DLQ's own redrive moves a message this keeps failing on to the same place."""
    message = parse_message(body)
    if message is None:
        kept = OutcomeKind.POISON
        detail: dict[str, Any] = {"reason": "the message is not a job message", "body": body[:200]}
    else:
        reason = dead_letter_reason(message)
        failed = job_store.fail(message.project_id, message.job_id, reason)
        kept = OutcomeKind.FAILED if failed else OutcomeKind.SKIPPED
        detail = {"job_id": message.job_id, "project_id": message.project_id, "reason": reason}
    queues.send(
        settings().JOBS_DEAD_URL, body, attributes | {"outcome": kept.value, "reason": detail["reason"]}
    )
    return Outcome(kept, detail)
