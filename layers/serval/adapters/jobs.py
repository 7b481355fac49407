"""Job items (``PROJECT#<pid>`` / ``JOB#<job id>``) and the streaming writer of their results.

Every status change is a conditional update, so two workers can never both run a job and a
finished job never changes again:

- :func:`create`: put (new id) + its audit record, one transaction;
- :func:`claim`: ``queued -> running`` (or a ``running`` job whose lease expired: its worker
  died), taking a lease owned by a fresh token;
- :func:`succeed`: ``running -> succeeded``, only by the lease owner, with its audit record;
- :func:`fail`: ``queued | running -> failed``, with its audit record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serval import ids, keys
from serval.adapters import audit, clients, dynamo
from serval.domain.actor import Actor
from serval.domain.jobs import Job, JobBusy, JobCounts, JobKind, JobStatus
from serval.domain.models import utcnow
from serval.errors import NotFound
from serval.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_ERROR_CHARS = 1_000


@dataclass(frozen=True)
class Claim:
    job: Job
    owner: str  # a fresh token per claim: only its holder may finish the job
    lease_until: int


def _key(project_id: str, job_id: str) -> dict[str, str]:
    return dynamo.item_key(keys.project_pk(project_id), keys.job_sk(job_id))


def from_item(item: Any) -> Job:
    return Job(
        job_id=item.job_id,
        project_id=item.project_id,
        kind=JobKind(item.kind),
        status=JobStatus(item.status),
        params=item.params or {},
        counts=JobCounts(done=int(item.done or 0), failed=int(item.failed or 0)),
        result_key=item.result_key,
        error=item.error,
        attempts=int(item.attempts or 0),
        shards=int(item.shards) if item.shards else None,
        shards_done=len(item.shards_done or ()) if item.shards else None,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        started_at=item.started_at,
        finished_at=item.finished_at,
    )


def new(project_id: str, kind: JobKind, params: dict[str, Any], created_by: str) -> Job:
    at = utcnow()
    return Job(
        job_id=ids.new_id("job"),
        project_id=project_id,
        kind=kind,
        status=JobStatus.QUEUED,
        params=params,
        created_by=created_by,
        created_at=at,
        updated_at=at,
    )


def create(
    job: Job, actor: Actor, audit_action: str, also: Callable[[dynamo.Tx], None] | None = None
) -> None:
    """Write a queued job and its audit record in one transaction.

    ``also`` adds actions to that transaction (e.g. an idempotency claim: its failed
    condition cancels the job too, raising :class:`~serval.adapters.dynamo.TransactionCancelled`).
    """
    m = dynamo.tasks()
    item = m.JobItem(
        PK=keys.project_pk(job.project_id),
        SK=keys.job_sk(job.job_id),
        GSI2PK=keys.jobs_gsi2pk(job.project_id),
        GSI2SK=keys.time_sort_key(job.created_at, job.job_id),
        project_id=job.project_id,
        job_id=job.job_id,
        kind=job.kind.value,
        params=job.params,
        status=job.status.value,
        created_by=job.created_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
    tx = dynamo.Tx()
    tx.put(item, condition="attribute_not_exists(PK)")
    if also is not None:
        also(tx)
    audit.record(
        tx,
        actor,
        audit_action,
        "job",
        job.job_id,
        job.project_id,
        after={"kind": job.kind.value, "params": job.params},
    )
    tx.commit()


def get(project_id: str, job_id: str, consistent: bool = False) -> Job:
    m = dynamo.tasks()
    try:
        item = m.JobItem.get(keys.project_pk(project_id), keys.job_sk(job_id), consistent_read=consistent)
    except m.JobItem.DoesNotExist:
        raise NotFound(f"job {job_id} not found", details={"job_id": job_id}) from None
    return from_item(item)


def claim(project_id: str, job_id: str, lease_seconds: int) -> Claim | None:
    """Take a job to run it. ``None`` when it already finished (a redelivered message).

    Raises NotFound for an unknown job and JobBusy while another worker's lease is live.
    """
    now = int(time.time())
    owner = ids.new_id("lease")
    lease_until = now + lease_seconds
    at = utcnow()
    try:
        response = clients.dynamodb().update_item(
            TableName=settings().TASKS_TABLE,
            Key={name: {"S": value} for name, value in _key(project_id, job_id).items()},
            UpdateExpression=(
                "SET #s = :running, lease_until = :lease, lease_owner = :owner, updated_at = :at, "
                "started_at = if_not_exists(started_at, :at) ADD attempts :one"
            ),
            ConditionExpression=(
                "attribute_exists(PK) AND #e = :job AND "
                "(#s = :queued OR (#s = :running AND lease_until < :now))"
            ),
            ExpressionAttributeNames={"#s": "status", "#e": keys.ENTITY},
            ExpressionAttributeValues={
                k: dynamo.serialize(v)
                for k, v in {
                    ":running": JobStatus.RUNNING.value,
                    ":queued": JobStatus.QUEUED.value,
                    ":lease": lease_until,
                    ":owner": owner,
                    ":at": at,
                    ":one": 1,
                    ":job": "job",
                    ":now": now,
                }.items()
            },
            ReturnValues="ALL_NEW",
        )
    except clients.dynamodb().exceptions.ConditionalCheckFailedException:
        existing = get(project_id, job_id, consistent=True)  # NotFound: an unknown job
        if existing.status.finished:
            return None
        raise JobBusy(f"job {job_id} is being run by another worker", details={"job_id": job_id}) from None
    item = dynamo.tasks().JobItem.from_raw_data(response["Attributes"])
    return Claim(from_item(item), owner, lease_until)


def succeed(c: Claim, counts: JobCounts, result_key: str | None, error: str | None = None) -> Job:
    """Finish a claimed job with its result, and audit it, in one transaction.

    ``error`` describes the items that failed (``counts.failed``) in a job that still succeeded.
    """
    at = utcnow()
    error = error[:MAX_ERROR_CHARS] if error else None
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        _key(c.job.project_id, c.job.job_id),
        "SET #s = :done_status, done = :done, failed = :failed, result_key = :key, "
        "updated_at = :at, finished_at = :at, lease_until = :zero"
        + (", #err = :error" if error else " REMOVE #err"),
        names={"#s": "status", "#err": "error"},
        values=({":error": error} if error else {})
        | {
            ":done_status": JobStatus.SUCCEEDED.value,
            ":done": counts.done,
            ":failed": counts.failed,
            ":key": result_key,
            ":at": at,
            ":zero": 0,
            ":running": JobStatus.RUNNING.value,
            ":owner": c.owner,
        },
        condition="#s = :running AND lease_owner = :owner",
    )
    audit.record(
        tx,
        Actor.system("jobs", on_behalf_of=c.job.created_by),
        "job.complete",
        "job",
        c.job.job_id,
        c.job.project_id,
        after={"kind": c.job.kind.value, "status": JobStatus.SUCCEEDED.value, "result_key": result_key},
        counts=counts.model_dump(),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise JobBusy(f"lost the lease on job {c.job.job_id}", details={"job_id": c.job.job_id}) from exc
    return c.job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "counts": counts,
            "result_key": result_key,
            "error": error,
            "updated_at": at,
            "finished_at": at,
        }
    )


def fail(project_id: str, job_id: str, error: str, owner: str | None = None) -> bool:
    """Mark a job failed with its error, and audit it. False when it had already finished
    (or, given ``owner``, when that worker no longer holds the lease)."""
    at = utcnow()
    error = error[:MAX_ERROR_CHARS]
    values: dict[str, Any] = {
        ":failed": JobStatus.FAILED.value,
        ":queued": JobStatus.QUEUED.value,
        ":running": JobStatus.RUNNING.value,
        ":error": error,
        ":at": at,
        ":zero": 0,
        ":job": "job",
    }
    condition = "#e = :job AND (#s = :queued OR #s = :running)"
    if owner:
        condition += " AND lease_owner = :owner"
        values[":owner"] = owner
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        _key(project_id, job_id),
        "SET #s = :failed, #err = :error, updated_at = :at, finished_at = :at, lease_until = :zero",
        names={"#s": "status", "#err": "error", "#e": keys.ENTITY},
        values=values,
        condition=condition,
    )
    audit.record(
        tx,
        Actor.system("jobs"),
        "job.fail",
        "job",
        job_id,
        project_id,
        after={"status": JobStatus.FAILED.value, "error": error},
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True


# ---- results: streamed to S3 ---------------------------------------------------------------

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_BYTES = 8 * 1024 * 1024


class ResultWriter:
    """Write a job's result to S3 in parts of ``part_size`` bytes: memory stays at one part.

    A result smaller than one part is written with one PutObject; anything larger is a
    multipart upload. :meth:`abort` (on any error) drops the parts uploaded so far.
    """

    def __init__(self, bucket: str, key: str, content_type: str, part_size: int = DEFAULT_PART_BYTES) -> None:
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"parts are at least {MIN_PART_BYTES} bytes")
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.part_size = part_size
        self.bytes_written = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    @property
    def parts(self) -> int:
        """Parts uploaded so far (a result written with one PutObject has none)."""
        return len(self._parts)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        while len(self._buffer) >= self.part_size:
            chunk = bytes(self._buffer[: self.part_size])
            del self._buffer[: self.part_size]
            self._upload_part(chunk)

    def close(self) -> None:
        """Upload what is left and complete the object."""
        s3 = clients.s3()
        if self._upload_id is None:
            s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self.content_type
            )
            self._buffer.clear()
            return
        if self._buffer:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None

    def abort(self) -> None:
        if self._upload_id is not None:
            clients.s3().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            self._upload_id = None
        self._buffer.clear()

    def _upload_part(self, chunk: bytes) -> None:
        s3 = clients.s3()
        if self._upload_id is None:
            self._upload_id = s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type
            )["UploadId"]
        number = len(self._parts) + 1
        response = s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=chunk
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
