"""Storage of bulk jobs: idempotency claims, progress checkpoints on the job item, S3 lists.

Progress lives on the job item itself (``PROJECT#<pid>`` / ``JOB#<job id>``) as top-level
attributes next to ``done``/``failed``: ``bulk_total`` (the resolved selection's size),
``bulk_offset`` (tasks handled so far), ``bulk_failures`` (the first failures' reasons) and
``bulk_audit_id`` (set once the job's single audit record is written). Every checkpoint is
conditional on the caller holding the job's lease and on the offset it started from.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from serval import keys
from serval.adapters import audit, clients, dynamo, storage
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.bulk import BulkFailure, BulkFilter
from serval.domain.jobs import JobBusy, JobCounts
from serval.domain.models import utcnow
from serval.settings import settings


@dataclass
class Progress:
    total: int | None = None
    offset: int = 0
    failures: list[BulkFailure] = field(default_factory=list)
    audit_id: str | None = None


def _key(project_id: str, job_id: str) -> dict[str, Any]:
    return {keys.PK: {"S": keys.project_pk(project_id)}, keys.SK: {"S": keys.job_sk(job_id)}}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: dynamo.serialize(v) for k, v in values.items()}


# ---- idempotency claims ----------------------------------------------------------------------


def key_digest(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def add_key_claim(
    tx: dynamo.Tx, project_id: str, idempotency_key: str, job_id: str, fingerprint: str
) -> None:
    """Claim an Idempotency-Key for ``job_id`` in ``tx``; fails if the key was claimed before."""
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(project_id), keys.bulk_key_sk(key_digest(idempotency_key))),
        "SET #e = :ent, job_id = :job, fingerprint = :fp, created_at = :at",
        names={"#e": keys.ENTITY},
        values={":ent": "bulk_key", ":job": job_id, ":fp": fingerprint, ":at": utcnow()},
        condition="attribute_not_exists(PK)",
    )


def key_claim(project_id: str, idempotency_key: str) -> tuple[str, str] | None:
    """(job id, request fingerprint) an Idempotency-Key was claimed for, if any."""
    item = (
        clients.dynamodb()
        .get_item(
            TableName=settings().TASKS_TABLE,
            Key={
                keys.PK: {"S": keys.project_pk(project_id)},
                keys.SK: {"S": keys.bulk_key_sk(key_digest(idempotency_key))},
            },
            ConsistentRead=True,
        )
        .get("Item")
    )
    if not item:
        return None
    return item["job_id"]["S"], item["fingerprint"]["S"]


# ---- progress on the job item ----------------------------------------------------------------


def progress(project_id: str, job_id: str) -> Progress:
    item = (
        clients.dynamodb()
        .get_item(TableName=settings().TASKS_TABLE, Key=_key(project_id, job_id), ConsistentRead=True)
        .get("Item")
        or {}
    )
    failures = json.loads(item["bulk_failures"]["S"]) if "bulk_failures" in item else []
    return Progress(
        total=int(item["bulk_total"]["N"]) if "bulk_total" in item else None,
        offset=int(item["bulk_offset"]["N"]) if "bulk_offset" in item else 0,
        failures=[BulkFailure.model_validate(f) for f in failures],
        audit_id=item["bulk_audit_id"]["S"] if "bulk_audit_id" in item else None,
    )


def checkpoint(
    claim: job_store.Claim,
    expected_offset: int | None,
    offset: int,
    total: int,
    counts: JobCounts,
    failures: list[BulkFailure],
    release: bool = False,
) -> None:
    """Record progress (``expected_offset=None``: the first checkpoint, after resolving).

    ``release`` also gives the lease up (and takes back the attempt its claim counted), so
    the next message for this job resumes at once. Raises JobBusy when the lease was lost.
    """
    expression = (
        "SET bulk_offset = :offset, bulk_total = :total, done = :done, failed = :failed, "
        "bulk_failures = :failures, updated_at = :at"
    )
    values: dict[str, Any] = {
        ":offset": offset,
        ":total": total,
        ":done": counts.done,
        ":failed": counts.failed,
        ":failures": json.dumps([f.model_dump() for f in failures]),
        ":at": utcnow(),
        ":owner": claim.owner,
    }
    condition = "lease_owner = :owner"
    if expected_offset is None:
        condition += " AND attribute_not_exists(bulk_offset)"
    else:
        condition += " AND bulk_offset = :expected"
        values[":expected"] = expected_offset
    if release:
        expression += ", lease_until = :zero REMOVE lease_owner ADD attempts :minus"
        values |= {":zero": 0, ":minus": -1}
    try:
        clients.dynamodb().update_item(
            TableName=settings().TASKS_TABLE,
            Key=_key(claim.job.project_id, claim.job.job_id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=_values(values),
        )
    except clients.dynamodb().exceptions.ConditionalCheckFailedException:
        raise JobBusy(
            f"lost the lease on job {claim.job.job_id}", details={"job_id": claim.job.job_id}
        ) from None


def audit_once(
    claim: job_store.Claim,
    action: str,
    counts: JobCounts,
    affected_ids: list[str],
    after: dict[str, Any],
) -> str | None:
    """Write the job's one audit record (with its affected ids in S3) unless it was written
    already; the job item remembers it in the same transaction. Returns the record's id."""
    job = claim.job
    existing = progress(job.project_id, job.job_id).audit_id
    if existing:
        return existing
    tx = dynamo.Tx()
    audit_id = audit.record_bulk(
        tx,
        Actor.system("jobs", on_behalf_of=job.created_by),
        action,
        "job",
        job.job_id,
        job.project_id,
        counts.model_dump(),
        affected_ids,
        after=after,
    )
    tx.update(
        settings().TASKS_TABLE,
        dynamo.item_key(keys.project_pk(job.project_id), keys.job_sk(job.job_id)),
        "SET bulk_audit_id = :id",
        values={":id": audit_id, ":owner": claim.owner},
        condition="lease_owner = :owner AND attribute_not_exists(bulk_audit_id)",
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise JobBusy(f"lost the lease on job {job.job_id}", details={"job_id": job.job_id}) from exc
    return audit_id


# ---- lists in S3 (exports bucket) ------------------------------------------------------------


def put_json(key: str, value: Any) -> None:
    body = json.dumps(value, separators=(",", ":")).encode()
    storage.upload(io.BytesIO(body), settings().EXPORT_BUCKET, key, "application/json")


def get_json(key: str) -> Any | None:
    s3 = clients.s3()
    try:
        body = s3.get_object(Bucket=settings().EXPORT_BUCKET, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body.read())


def failed_ids(project_id: str, job_id: str) -> set[str]:
    """Every id a bulk job's chunks recorded as failed."""
    s3 = clients.s3()
    found: set[str] = set()
    prefix = keys.bulk_failed_prefix(project_id, job_id)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings().EXPORT_BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            found.update(get_json(obj["Key"]) or [])
    return found


# ---- resolving a filter ----------------------------------------------------------------------


def iter_selected(project_id: str, f: BulkFilter) -> Iterator[str]:
    """Ids of the tasks a filter selects, oldest first: one partition Query, never a scan."""
    m = dynamo.tasks()
    created_from = _iso(f.created_from)
    created_to = _iso(f.created_to)
    if f.tag is not None:
        pk = keys.project_pk(project_id)
        links = m.Item.query(pk, m.Item.SK.startswith(keys.tag_sk_prefix(f.tag)), page_size=1000)
        batch: list[str] = []
        for link in links:
            batch.append(str(getattr(link, "task_id", "")))
            if len(batch) == 100:
                yield from _matching(project_id, batch, f, created_from, created_to)
                batch = []
        yield from _matching(project_id, batch, f, created_from, created_to)
        return
    if f.status is not None:
        index, partition = m.Item.by_status, keys.status_gsi1pk(project_id, f.status)
    else:
        index, partition = m.Item.by_time, keys.tasks_gsi2pk(project_id)
    condition = None if f.media_type is None else m.TaskItem.media_type == f.media_type.value
    for item in index.query(partition, filter_condition=condition, page_size=1000):
        if getattr(item, "task_id", None) and _in_range(item.created_at, created_from, created_to):
            yield str(item.task_id)


def _matching(
    project_id: str, task_ids: list[str], f: BulkFilter, created_from: str | None, created_to: str | None
) -> Iterator[str]:
    if not task_ids:
        return
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    by_id = {item.task_id: item for item in m.TaskItem.batch_get([(pk, keys.task_sk(t)) for t in task_ids])}
    for task_id in task_ids:
        item = by_id.get(task_id)
        if item is None:
            continue
        if f.status is not None and item.status != f.status.value:
            continue
        if f.media_type is not None and item.media_type != f.media_type.value:
            continue
        if _in_range(item.created_at, created_from, created_to):
            yield task_id


def _iso(value: Any) -> str | None:
    """An aware datetime in the items' ``created_at`` format (UTC, milliseconds, ``Z``)."""
    if value is None:
        return None
    from datetime import UTC

    return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")


def _in_range(created_at: str, created_from: str | None, created_to: str | None) -> bool:
    return (created_from is None or created_at >= created_from) and (
        created_to is None or created_at < created_to
    )
