"""Dataset exports of large projects: fan out over the jobs queue, gather shards, assemble.

A project with more than ``EXPORT_SHARD_TASKS`` tasks (its status counters: no scan) is
exported in ``K`` shards, contiguous task-id ranges (:mod:`serval.domain.exports.shards`):

1. **Fan out.** The job's own message records ``K`` on the job item, gives the job's lease
   back and sends one ``shard`` message per shard not gathered yet (a re-run after a crash
   sends the missing ones again: shards are idempotent).
2. **Gather (parallel).** A shard worker takes its shard's own lease, reads its id range,
   filters and prepares the records (the image-size GETs: the slow part) and streams them,
   with the failures, as JSON Lines into ``shards/<n>.jsonl`` (multipart: flat memory).
   Then it counts the shard on the job item once (``ADD shards_done`` on condition that the
   shard is not in it yet). The worker whose count completes the set sends ``assemble``.
3. **Assemble.** The assembler takes the job's lease, streams the shard files in shard order
   (task-id order, as one reader would), tallies them and encodes the format into the result
   exactly as the one-piece path does (:func:`serval.logic.dataset_export.write_result`),
   finishes the job (``export.completed`` follows from the job item's change) and deletes
   the shard files.

A shard or assemble step that hits a transient error raises (SQS redelivers it) until its
``MAX_ATTEMPTS``-th try, which fails the job; a ServalError (a timeout, invalid parameters)
or any error a retry cannot mend fails the job at once with the shard named
(:func:`serval.logic.jobs.give_up_reason`). Poison messages are reported, never retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from serval.adapters import dynamo, export_shards, queues, storage
from serval.adapters import jobs as job_store
from serval.domain.exports import ExportFailure, ExportRecord, shards
from serval.domain.jobs import Job, JobCounts, JobFannedOut, JobMessage, JobStep, JobTimedOut
from serval.errors import NotFound, ServalError, Throttled
from serval.logic import dataset_export, jobs
from serval.settings import settings

SHARD_CONTENT_TYPE = "application/x-ndjson"


def plan(job: Job) -> int:
    """How many shards the job runs in: as recorded by an earlier fan-out, else from the
    project's task count and ``EXPORT_SHARD_TASKS`` (1: in one piece)."""
    if job.shards:
        return job.shards
    tasks = sum(dynamo.read_counters(job.project_id).values())
    return shards.shard_count(tasks, settings().EXPORT_SHARD_TASKS)


def _send(message: JobMessage) -> None:
    body = message.model_dump_json(exclude_defaults=True)
    queues.send(settings().JOBS_QUEUE_URL, body, {"kind": "dataset_export", "step": message.step.value})


def fan_out(claim: job_store.Claim, count: int) -> None:
    """Split the claimed job into shard messages; always raises JobFannedOut."""
    job = claim.job
    state = export_shards.fan_out(claim, count)
    total = state.shards or count
    pending = [n for n in range(total) if n not in state.done]
    for n in pending:
        _send(
            JobMessage(
                job_id=job.job_id, project_id=job.project_id, step=JobStep.SHARD, shard=n, shards=total
            )
        )
    if state.gathered:  # every shard was gathered before this re-run: assembling is what is left
        _send(JobMessage(job_id=job.job_id, project_id=job.project_id, step=JobStep.ASSEMBLE))
    raise JobFannedOut(f"the export runs in {total} shards", details={"shards": total, "sent": len(pending)})


def process_step(message: JobMessage, time_left: Callable[[], float]) -> jobs.Outcome:
    """Run one ``shard`` or ``assemble`` message of a fanned-out export."""
    if message.step is JobStep.SHARD:
        return _gather_step(message, time_left)
    return _assemble_step(message, time_left)


def _ids(message: JobMessage) -> dict[str, object]:
    ids: dict[str, object] = {"job_id": message.job_id, "project_id": message.project_id}
    if message.shard is not None:
        ids["shard"] = message.shard
    return ids


def _failed(message: JobMessage, what: str, exc: Exception, attempts: int, owner: str | None) -> jobs.Outcome:
    """A step's error: re-raise a transient one (SQS redelivers) before its last attempt;
    otherwise fail the job with the reason."""
    if isinstance(exc, ServalError) and not isinstance(exc, Throttled):
        error = f"{what} failed: {exc.message}"
    else:
        reason = jobs.give_up_reason(exc, attempts)
        if reason is None:
            raise exc
        error = f"{what} {reason}"
    job_store.fail(message.project_id, message.job_id, error, owner=owner)
    return jobs.Outcome(jobs.OutcomeKind.FAILED, {"error": error, "kind": "dataset_export", **_ids(message)})


# ---- gather --------------------------------------------------------------------------------


def _gather_step(message: JobMessage, time_left: Callable[[], float]) -> jobs.Outcome:
    shard, count = message.shard, message.shards
    assert shard is not None and count is not None  # a shard message names both (JobMessage)
    try:
        attempts = export_shards.claim_shard(
            message.project_id, message.job_id, shard, count, jobs.LEASE_SECONDS
        )
    except NotFound:
        return jobs.Outcome(jobs.OutcomeKind.POISON, {"reason": "no such job", **_ids(message)})
    except ValueError as exc:
        return jobs.Outcome(jobs.OutcomeKind.POISON, {"reason": str(exc), **_ids(message)})
    if attempts is None:  # gathered before: make sure the assembly was asked for
        _assemble_if_gathered(message)
        return jobs.Outcome(
            jobs.OutcomeKind.SKIPPED, {"reason": "the shard was gathered already", **_ids(message)}
        )
    what = f"shard {shard + 1} of {count}"
    try:
        counts = gather(job_store.get(message.project_id, message.job_id), shard, count, time_left)
    except Exception as exc:
        return _failed(message, what, exc, attempts, owner=None)
    state = export_shards.complete_shard(message.project_id, message.job_id, shard, count, counts)
    if state is None:  # a duplicate counted it first
        _assemble_if_gathered(message)
    elif state.gathered:
        _send(JobMessage(job_id=message.job_id, project_id=message.project_id, step=JobStep.ASSEMBLE))
    return jobs.Outcome(
        jobs.OutcomeKind.GATHERED, {"done": counts.done, "failed": counts.failed, **_ids(message)}
    )


def _assemble_if_gathered(message: JobMessage) -> None:
    state = export_shards.progress(message.project_id, message.job_id)
    if state.gathered and not state.status.finished:
        _send(JobMessage(job_id=message.job_id, project_id=message.project_id, step=JobStep.ASSEMBLE))


def gather(job: Job, shard: int, count: int, time_left: Callable[[], float]) -> JobCounts:
    """Write shard ``shard``'s prepared records and failures to its file; their counts."""
    request = dataset_export.request_of(job)
    lo, hi = shards.bounds(shard, count)
    writer = job_store.ResultWriter(
        settings().EXPORT_BUCKET,
        shards.shard_key(job.project_id, job.job_id, shard),
        SHARD_CONTENT_TYPE,
        part_size=dataset_export.PART_BYTES,
    )
    done = failed = 0
    try:
        for item in dataset_export.outcomes(job, request, time_left, lo, hi):
            if isinstance(item, ExportFailure):
                failed += 1
            else:
                done += 1
            writer.write(shards.encode_line(item))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return JobCounts(done=done, failed=failed)


# ---- assemble ------------------------------------------------------------------------------


def _assemble_step(message: JobMessage, time_left: Callable[[], float]) -> jobs.Outcome:
    try:
        taken = export_shards.claim_assembly(message.project_id, message.job_id, jobs.LEASE_SECONDS)
    except NotFound:
        return jobs.Outcome(jobs.OutcomeKind.POISON, {"reason": "no such job", **_ids(message)})
    if taken is None:
        return jobs.Outcome(jobs.OutcomeKind.SKIPPED, {"reason": "the job already finished", **_ids(message)})
    claim, attempts = taken
    job = claim.job
    if not job.shards or (job.shards_done or 0) < job.shards:
        export_shards.release(claim)
        return jobs.Outcome(
            jobs.OutcomeKind.POISON, {"reason": "not every shard is gathered", **_ids(message)}
        )
    try:
        request = dataset_export.request_of(job)
        result = dataset_export.write_result(job, request, _shard_items(job, job.shards, time_left))
    except Exception as exc:
        return _failed(message, "assembling the export", exc, attempts, owner=claim.owner)
    finished = job_store.succeed(claim, result.counts, result.result_key, result.error)
    keys = (shards.shard_key(job.project_id, job.job_id, n) for n in range(job.shards))
    export_shards.delete_files(settings().EXPORT_BUCKET, keys)
    return jobs.Outcome(
        jobs.OutcomeKind.SUCCEEDED,
        {
            "kind": finished.kind.value,
            "done": finished.counts.done,
            "failed": finished.counts.failed,
            "shards": job.shards,
            **_ids(message),
        },
    )


def _shard_items(
    job: Job, count: int, time_left: Callable[[], float]
) -> Iterator[ExportRecord | ExportFailure]:
    """Every shard file's lines, decoded, in shard order (so in task-id order)."""
    bucket = settings().EXPORT_BUCKET
    seen = 0
    for shard in range(count):
        for line in storage.iter_lines(bucket, shards.shard_key(job.project_id, job.job_id, shard)):
            if not line:
                continue
            seen += 1
            if seen % dataset_export.CHECK_EVERY == 0 and time_left() < dataset_export.DEADLINE_MARGIN_S:
                raise JobTimedOut(f"assembling stopped after {seen} tasks: it did not finish in time")
            yield shards.decode_line(line)
