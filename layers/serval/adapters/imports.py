"""Import records: reads, and the lease-guarded claim, checkpoints and completion of an API
bulk create. A manifest import's record is written by :mod:`serval.adapters.import_ranges`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serval import ids, keys
from serval.adapters import audit, dynamo, mapping
from serval.domain.actor import Actor
from serval.domain.models import Import, ImportSource, ImportStatus, LineError, utcnow
from serval.errors import IdempotencyKeyReused, ImportBusy, NotFound
from serval.settings import settings

MAX_REFUSED_KEPT = 100  # refused lines whose errors the import item keeps for the report
FINISHED = (ImportStatus.COMPLETED.value, ImportStatus.COMPLETED_WITH_ERRORS.value, ImportStatus.FAILED.value)


@dataclass(frozen=True)
class Claim:
    """A worker's hold on an import. ``resumed`` when an earlier attempt stopped partway."""

    record: Import
    lines_committed: int
    resumed: bool
    lease_until: int
    owner: str  # a fresh token per claim: only its holder may checkpoint, release or complete
    # the import's committed totals, as the lease-guarded checkpoints wrote them (for its audit record)
    tasks_created: int = 0
    duplicates: int = 0
    # lines whose tasks DynamoDB refused, over every attempt, and the first of their line errors
    refused: int = 0
    refused_lines: tuple[LineError, ...] = ()


def _key(project_id: str, import_id: str) -> dict[str, str]:
    return dynamo.item_key(keys.project_pk(project_id), keys.import_sk(import_id))


def get(project_id: str, import_id: str) -> Import:
    m = dynamo.tasks()
    try:
        return mapping.import_from_item(
            m.ImportItem.get(keys.project_pk(project_id), keys.import_sk(import_id))
        )
    except m.ImportItem.DoesNotExist:
        raise NotFound(f"import {import_id} not found", details={"import_id": import_id}) from None


def list_page(project_id: str, limit: int, cursor: str | None) -> tuple[list[Import], str | None]:
    m = dynamo.tasks()
    partition = keys.imports_gsi2pk(project_id)
    start = dynamo.decode_cursor(cursor, keys.GSI2PK, partition)
    results = m.Item.by_time.query(
        partition, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
    )
    return [mapping.import_from_item(i) for i in results], dynamo.encode_cursor(results.last_evaluated_key)


def claim(
    project_id: str,
    import_id: str,
    source: ImportSource,
    bucket: str | None,
    key: str | None,
    actor: Actor,
    lease_seconds: int,
    *,
    audit_start: bool = True,
    fingerprint: str | None = None,
) -> Claim | None:
    """Take (or resume) an import. ``None`` when it already finished: a redelivered event.

    Raises ImportBusy while another worker's lease is live, and IdempotencyKeyReused when
    ``fingerprint`` (of an API create's body) differs from the one the import was made with. The first claim writes the
    import record and (with ``audit_start``) its ``import.start`` audit record in one
    transaction. A pipeline import audits its start, since it may run for minutes; an API
    bulk create, finished within its request, is audited once, by its completion record.
    """
    m = dynamo.tasks()
    now = int(time.time())
    lease_until = now + lease_seconds
    owner = ids.new_id("lease")
    at = utcnow()
    record = Import(
        import_id=import_id,
        project_id=project_id,
        source=source,
        bucket=bucket,
        key=key,
        status=ImportStatus.RUNNING,
        created_by=actor.user_id,
        created_at=at,
        updated_at=at,
    )
    item = m.ImportItem(
        PK=keys.project_pk(project_id),
        SK=keys.import_sk(import_id),
        GSI2PK=keys.imports_gsi2pk(project_id),
        GSI2SK=keys.time_sort_key(at, import_id),
        **record.model_dump(mode="json", exclude_none=True),
        lease_until=lease_until,
        lease_owner=owner,
        request_fingerprint=fingerprint,
    )
    tx = dynamo.Tx()
    tx.put(item, condition="attribute_not_exists(PK)")
    if audit_start:
        audit.record(
            tx,
            actor,
            "import.start",
            "import",
            import_id,
            project_id,
            after={"source": source.value, "bucket": bucket, "key": key},
        )
    try:
        tx.commit()
        return Claim(record, 0, resumed=False, lease_until=lease_until, owner=owner)
    except dynamo.TransactionCancelled:
        pass
    from pynamodb.exceptions import UpdateError

    existing = m.ImportItem.get(keys.project_pk(project_id), keys.import_sk(import_id), consistent_read=True)
    if fingerprint is not None and existing.request_fingerprint not in (None, fingerprint):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for another request", details={"import_id": import_id}
        )
    if existing.status in FINISHED:
        return None
    try:
        existing.update(
            actions=[
                m.ImportItem.lease_until.set(lease_until),
                m.ImportItem.lease_owner.set(owner),
                m.ImportItem.updated_at.set(at),
            ],
            condition=(m.ImportItem.status == ImportStatus.RUNNING.value) & (m.ImportItem.lease_until < now),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise ImportBusy(f"import {import_id} is being processed by another worker") from exc
        raise
    return Claim(
        mapping.import_from_item(existing),
        int(existing.lines_committed or 0),
        True,
        lease_until,
        owner,
        tasks_created=int(existing.tasks_created or 0),
        duplicates=int(existing.duplicates or 0),
        refused=int(existing.refused or 0),
        refused_lines=refused_lines_of(existing),
    )


def refused_lines_of(item: Any) -> tuple[LineError, ...]:
    """The refused lines an import (or range) item keeps for its error report."""
    return tuple(LineError.model_validate_json(str(e)) for e in item.refused_lines or ())


def add_checkpoint(
    tx: dynamo.Tx,
    key: dict[str, str],
    *,
    position_attr: str,
    position: int,
    previous: int,
    owner: str,
    lease_seconds: int,
    created: int,
    duplicates: int,
    refused: Sequence[LineError],
    kept_before: int,
) -> tuple[int, tuple[LineError, ...]]:
    """Add to ``tx`` the lease-guarded advance of an import's (or range's) checkpoint: its
    position (``position_attr``) from ``previous`` to ``position``, a renewed lease, and the
    counts of the tasks written since; the first :data:`MAX_REFUSED_KEPT` refused lines (over
    ``kept_before`` already kept) are kept for the error report. Returns (lease until, kept)."""
    lease_until = int(time.time()) + lease_seconds
    kept = tuple(refused[: max(0, MAX_REFUSED_KEPT - kept_before)])
    sets = f"SET {position_attr} = :n, lease_until = :l, updated_at = :at"
    values: dict[str, Any] = {
        ":n": position,
        ":l": lease_until,
        ":at": utcnow(),
        ":c": created,
        ":d": duplicates,
        ":r": len(refused),
        ":prev": previous,
        ":owner": owner,
    }
    if kept:
        sets += ", refused_lines = list_append(if_not_exists(refused_lines, :none), :kept)"
        values |= {":none": [], ":kept": [e.model_dump_json() for e in kept]}
    tx.update(
        settings().TASKS_TABLE,
        key,
        sets + " ADD tasks_created :c, duplicates :d, refused :r",
        values=values,
        condition=f"{position_attr} = :prev AND lease_owner = :owner",
    )
    return lease_until, kept


def checkpoint(
    c: Claim,
    lines_committed: int,
    created: int,
    duplicates: int,
    counter_deltas: dict[str, int],
    lease_seconds: int,
    refused: Sequence[LineError] = (),
) -> Claim:
    """Advance the committed line and add the counters of the tasks written since, atomically.

    ``refused``: the lines since whose tasks DynamoDB refused; they are counted on the
    import, and the first :data:`MAX_REFUSED_KEPT` of them kept for its error report.
    """
    tx = dynamo.Tx()
    lease_until, kept = add_checkpoint(
        tx,
        _key(c.record.project_id, c.record.import_id),
        position_attr="lines_committed",
        position=lines_committed,
        previous=c.lines_committed,
        owner=c.owner,
        lease_seconds=lease_seconds,
        created=created,
        duplicates=duplicates,
        refused=refused,
        kept_before=len(c.refused_lines),
    )
    dynamo.add_counter(tx, c.record.project_id, f"{c.record.import_id}#{lines_committed}", counter_deltas)
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise ImportBusy(f"lost the lease on import {c.record.import_id}") from exc
    return Claim(
        c.record,
        lines_committed,
        c.resumed,
        lease_until,
        c.owner,
        tasks_created=c.tasks_created + created,
        duplicates=c.duplicates + duplicates,
        refused=c.refused + len(refused),
        refused_lines=c.refused_lines + kept,
    )


def complete(
    c: Claim,
    lines_total: int,
    errors: int,
    error_report_key: str | None,
    status: ImportStatus,
    actor: Actor,
    *,
    affected_ids: Sequence[str] | None = None,
) -> Import:
    """Finish the import and write its ONE bulk audit record, in one transaction.

    The record carries the import's counts (lines, tasks created, duplicates, errors).
    With ``affected_ids`` (an API bulk create: at most MAX_BULK_CREATE ids, in memory) the
    ids go to the exports bucket and the record points at them (``affected_ids_key``).
    A manifest import runs across continuations and may create millions of tasks, so its
    ids are never all in memory: its record has counts only, and its pointer is the import
    itself (``target_id``); every task it created carries that ``import_id``.
    """
    at = utcnow()
    values: dict[str, Any] = {
        ":s": status.value,
        ":t": lines_total,
        ":e": errors,
        ":at": at,
        ":owner": c.owner,
    }
    expression = "SET #s = :s, lines_total = :t, errors = :e, completed_at = :at, updated_at = :at, lease_until = :zero"
    values[":zero"] = 0
    if error_report_key:
        expression += ", error_report_key = :r"
        values[":r"] = error_report_key
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        _key(c.record.project_id, c.record.import_id),
        expression,
        names={"#s": "status"},
        values=values,
        condition="lease_owner = :owner",
    )
    counts = {
        "lines_total": lines_total,
        "tasks_created": c.tasks_created,
        "duplicates": c.duplicates,
        "errors": errors,
    }
    after = {
        "status": status.value,
        "error_report_key": error_report_key,
        "source": {"bucket": c.record.bucket, "key": c.record.key},
    }
    if affected_ids is not None:
        audit.record_bulk(
            tx,
            actor,
            "import.complete",
            "import",
            c.record.import_id,
            c.record.project_id,
            counts,
            affected_ids,
            after=after,
        )
    else:
        audit.record(
            tx,
            actor,
            "import.complete",
            "import",
            c.record.import_id,
            c.record.project_id,
            after=after,
            counts=counts,
        )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise ImportBusy(f"lost the lease on import {c.record.import_id}") from exc
    return get(c.record.project_id, c.record.import_id)
