"""Shard state of a fanned-out dataset export, on its job item, and its shard files.

The job item (``PROJECT#<pid>`` / ``JOB#<job id>``) carries, next to ``done``/``failed``:

- ``shards``: the shard count, fixed by the first fan-out (a re-run fans out the same way);
- ``shard_leases`` / ``shard_attempts``: maps shard -> lease expiry (epoch s) / times taken,
  so each shard has its own lease while K workers run concurrently;
- ``shards_done``: the number set of gathered shards. Completing a shard ADDs it together
  with its counts, on condition that it is not in the set yet: a redelivered shard message
  never counts twice, and the returned set tells the worker whether it was the last one;
- ``assemble_attempts``: times an assembler took the job (it then holds the job's own lease).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from serval import ids, keys
from serval.adapters import clients, dynamo
from serval.adapters import jobs as job_store
from serval.domain.jobs import JobBusy, JobCounts, JobStatus
from serval.domain.models import utcnow
from serval.errors import NotFound
from serval.settings import settings

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass(frozen=True)
class Progress:
    """Where a fanned-out job stands."""

    status: JobStatus
    shards: int | None
    done: frozenset[int] = field(default_factory=frozenset)

    @property
    def gathered(self) -> bool:
        return self.shards is not None and len(self.done) >= self.shards


def _key(project_id: str, job_id: str) -> dict[str, Any]:
    return {keys.PK: {"S": keys.project_pk(project_id)}, keys.SK: {"S": keys.job_sk(job_id)}}


def _update(
    project_id: str, job_id: str, expression: str, condition: str, names: dict[str, str], **values: Any
) -> dict[str, Any]:
    """One conditional UpdateItem of the job item (``:name`` values); its new attributes (raw)."""
    response = clients.dynamodb().update_item(
        TableName=settings().TASKS_TABLE,
        Key=_key(project_id, job_id),
        UpdateExpression=expression,
        ConditionExpression=condition,
        **({"ExpressionAttributeNames": names} if names else {}),  # type: ignore[arg-type]
        ExpressionAttributeValues={f":{k}": dynamo.serialize(v) for k, v in values.items()},
        ReturnValues="ALL_NEW",
    )
    return dict(response["Attributes"])


def _conditional_failed() -> type[Exception]:
    return clients.dynamodb().exceptions.ConditionalCheckFailedException


def _progress(raw: dict[str, Any]) -> Progress:
    shards = raw.get("shards", {}).get("N")
    done = raw.get("shards_done", {}).get("NS", [])
    return Progress(JobStatus(raw["status"]["S"]), int(shards) if shards else None, frozenset(map(int, done)))


def progress(project_id: str, job_id: str) -> Progress:
    """The job's shard state (consistent read); NotFound for an unknown job."""
    raw = (
        clients.dynamodb()
        .get_item(TableName=settings().TASKS_TABLE, Key=_key(project_id, job_id), ConsistentRead=True)
        .get("Item")
    )
    if not raw:
        raise NotFound(f"job {job_id} not found", details={"job_id": job_id})
    return _progress(raw)


def fan_out(claim: job_store.Claim, shards: int) -> Progress:
    """Record that the claimed job runs as ``shards`` shards (or as many as a first fan-out
    chose), and give back the job's lease: shards take their own, the assembler the job's."""
    try:
        raw = _update(
            claim.job.project_id,
            claim.job.job_id,
            "SET shards = if_not_exists(shards, :k), shard_leases = if_not_exists(shard_leases, :empty), "
            "shard_attempts = if_not_exists(shard_attempts, :empty), lease_until = :zero, updated_at = :at",
            "#s = :running AND lease_owner = :owner",
            {"#s": "status"},
            k=shards,
            empty={"M": {}},
            zero=0,
            at=utcnow(),
            running=JobStatus.RUNNING.value,
            owner=claim.owner,
        )
    except _conditional_failed():
        raise JobBusy(
            f"lost the lease on job {claim.job.job_id}", details={"job_id": claim.job.job_id}
        ) from None
    return _progress(raw)


# the shard (``:shard``) is not counted yet
_NOT_DONE = "(attribute_not_exists(shards_done) OR NOT contains(shards_done, :shard))"


def claim_shard(project_id: str, job_id: str, shard: int, shards: int, lease_seconds: int) -> int | None:
    """Take shard ``shard``'s lease: the number of times it was taken, this one included.

    ``None`` when there is nothing to do (the job finished, or the shard is gathered already);
    raises JobBusy while another worker's lease on the shard is live.
    """
    now = int(time.time())
    try:
        raw = _update(
            project_id,
            job_id,
            "SET shard_leases.#n = :until, "
            "shard_attempts.#n = if_not_exists(shard_attempts.#n, :zero) + :one, updated_at = :at",
            "#e = :job AND #s = :running AND shards = :k AND " + _NOT_DONE + " "
            "AND (attribute_not_exists(shard_leases.#n) OR shard_leases.#n < :now)",
            {"#s": "status", "#e": keys.ENTITY, "#n": str(shard)},
            until=now + lease_seconds,
            zero=0,
            one=1,
            at=utcnow(),
            job="job",
            running=JobStatus.RUNNING.value,
            k=shards,
            shard=shard,
            now=now,
        )
    except _conditional_failed():
        state = progress(project_id, job_id)
        if state.status.finished or shard in state.done:
            return None
        if state.status is not JobStatus.RUNNING or state.shards != shards:
            raise ValueError(f"job {job_id} has no shard {shard} of {shards}") from None
        raise JobBusy(
            f"shard {shard} of job {job_id} is being gathered", details={"job_id": job_id}
        ) from None
    return int(raw["shard_attempts"]["M"][str(shard)]["N"])


def complete_shard(
    project_id: str, job_id: str, shard: int, shards: int, counts: JobCounts
) -> Progress | None:
    """Count a gathered shard once: its counts are added to the job's, its number to
    ``shards_done``. ``None`` when it was counted before (or the job finished)."""
    try:
        raw = _update(
            project_id,
            job_id,
            "ADD shards_done :set, done :done, failed :failed SET updated_at = :at REMOVE shard_leases.#n",
            "#s = :running AND shards = :k AND " + _NOT_DONE,
            {"#s": "status", "#n": str(shard)},
            set={shard},
            shard=shard,
            done=counts.done,
            failed=counts.failed,
            at=utcnow(),
            running=JobStatus.RUNNING.value,
            k=shards,
        )
    except _conditional_failed():
        return None
    return _progress(raw)


def claim_assembly(project_id: str, job_id: str, lease_seconds: int) -> tuple[job_store.Claim, int] | None:
    """Take the job's lease to assemble it: the claim and the times an assembler took it.

    ``None`` when the job finished; JobBusy while another worker holds the job's lease.
    """
    now = int(time.time())
    owner = ids.new_id("lease")
    try:
        raw = _update(
            project_id,
            job_id,
            "SET lease_owner = :owner, lease_until = :until, updated_at = :at ADD assemble_attempts :one",
            "#e = :job AND #s = :running AND attribute_exists(shards) AND lease_until < :now",
            {"#s": "status", "#e": keys.ENTITY},
            owner=owner,
            until=now + lease_seconds,
            at=utcnow(),
            one=1,
            job="job",
            running=JobStatus.RUNNING.value,
            now=now,
        )
    except _conditional_failed():
        if progress(project_id, job_id).status.finished:
            return None
        raise JobBusy(f"job {job_id} is being run by another worker", details={"job_id": job_id}) from None
    item = dynamo.tasks().JobItem.from_raw_data(raw)
    claim = job_store.Claim(job_store.from_item(item), owner, now + lease_seconds)
    return claim, int(raw["assemble_attempts"]["N"])


def release(claim: job_store.Claim) -> None:
    """Give back the job's lease (an assembler that found shards missing)."""
    try:
        _update(
            claim.job.project_id,
            claim.job.job_id,
            "SET lease_until = :zero",
            "lease_owner = :owner",
            {},
            zero=0,
            owner=claim.owner,
        )
    except _conditional_failed():
        pass


def delete_files(bucket: str, object_keys: Iterable[str]) -> None:
    """Delete objects, 1,000 per request (a missing key is not an error)."""
    batch: list[str] = []
    for key in object_keys:
        batch.append(key)
        if len(batch) == DELETE_BATCH:
            _delete(bucket, batch)
            batch = []
    if batch:
        _delete(bucket, batch)


def _delete(bucket: str, batch: list[str]) -> None:
    clients.s3().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
