"""A manifest import in byte ranges: the import record and one item per range.

The import item (``PROJECT#<pid>`` / ``IMPORT#<iid>``) carries ``ranges_total`` and
``ranges_done`` next to the import's counts. Each range has its own item
(``IMPORT#<iid>#RANGE#<n>``) with its own lease, its checkpoint (the offset of the last line
whose task is committed) and its counts, so the ranges of one manifest run side by side:

- a **checkpoint** advances one range and adds the tasks it wrote to the import's counts and
  to a counter shard, in one transaction conditional on the range's lease and previous
  checkpoint: counts are added exactly once, whatever is retried;
- **completing a range** marks it done and adds its line counts to the import (``ADD
  ranges_done 1``), in one transaction conditional on the range not being done yet: a
  redelivered range message counts nothing twice;
- **finishing** flips the import from ``running`` to its final status once every range is
  done, in one transaction with its ``import.complete`` audit record, on condition that it is
  still running: whichever range finishes last (or a redelivery of it) finishes the import, and
  it finishes once, so ``import.completed`` is emitted once (from the item's change).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from serval import ids, keys
from serval.adapters import audit, clients, dynamo, imports
from serval.domain.actor import Actor
from serval.domain.byte_ranges import ByteRange
from serval.domain.models import ImportSource, ImportStatus, LineError, utcnow
from serval.errors import ImportBusy, NotFound
from serval.settings import settings

RUNNING = ImportStatus.RUNNING.value
RANGE_RUNNING, RANGE_DONE = "running", "done"
FINISHED = frozenset(s for s in ImportStatus if s is not ImportStatus.RUNNING)


class ImportClosed(Exception):
    """The import is no longer running (it finished or failed): a range has nothing to add."""


@dataclass(frozen=True)
class RangeClaim:
    """A worker's hold on one range. ``resumed`` when an earlier attempt stopped partway."""

    project_id: str
    import_id: str
    range: ByteRange
    owner: str  # a fresh token per claim: only its holder may checkpoint, release or complete
    lease_until: int
    committed: int = -1  # the offset of the last line whose task is committed (-1: none)
    resumed: bool = False
    # the range's committed totals, and the first of the lines DynamoDB refused in it
    tasks_created: int = 0
    duplicates: int = 0
    refused: int = 0
    refused_lines: tuple[LineError, ...] = ()


@dataclass(frozen=True)
class ImportState:
    status: ImportStatus
    ranges_total: int
    ranges_done: int
    ranges_queued: bool
    range_bytes: int | None  # the range size the import was planned with
    lines_total: int
    tasks_created: int
    duplicates: int
    errors: int

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def all_ranges_done(self) -> bool:
        return self.ranges_done >= self.ranges_total

    def counts(self, extra_errors: int = 0) -> dict[str, int]:
        """The counts its ``import.complete`` audit record carries."""
        return {
            "lines_total": self.lines_total,
            "tasks_created": self.tasks_created,
            "duplicates": self.duplicates,
            "errors": self.errors + extra_errors,
        }


@dataclass(frozen=True)
class RangeRecord:
    """A range as its completion left it: what the import's error report needs."""

    index: int
    done: bool
    lines: int  # every line it holds, blank ones too (so later ranges' line numbers follow)
    errors: int
    error_part_key: str | None


@dataclass(frozen=True)
class Finish:
    """What finishing the import writes (with the last range of a one-range import)."""

    status: ImportStatus
    error_report_key: str | None
    actor: Actor
    bucket: str
    key: str


@dataclass(frozen=True)
class Opened:
    created: bool
    claim: RangeClaim | None = None  # the first range's, when it was claimed with the import


def _import_key(project_id: str, import_id: str) -> dict[str, str]:
    return dynamo.item_key(keys.project_pk(project_id), keys.import_sk(import_id))


def _range_key(project_id: str, import_id: str, index: int) -> dict[str, str]:
    return dynamo.item_key(keys.project_pk(project_id), keys.import_range_sk(import_id, index))


def _range_item(project_id: str, import_id: str, byte_range: ByteRange, owner: str, lease_until: int) -> Any:
    at = utcnow()
    return dynamo.tasks().ImportRangeItem(
        PK=keys.project_pk(project_id),
        SK=keys.import_range_sk(import_id, byte_range.index),
        project_id=project_id,
        import_id=import_id,
        index=byte_range.index,
        start=byte_range.start,
        end=byte_range.end,
        status=RANGE_RUNNING,
        lease_until=lease_until,
        lease_owner=owner,
        created_at=at,
        updated_at=at,
    )


def _check_running(tx: dynamo.Tx, project_id: str, import_id: str) -> None:
    tx.check(
        settings().TASKS_TABLE,
        _import_key(project_id, import_id),
        "#s = :running",
        names={"#s": "status"},
        values={":running": RUNNING},
    )


def open_import(
    project_id: str,
    import_id: str,
    bucket: str,
    key: str,
    actor: Actor,
    ranges_total: int,
    range_bytes: int,
    first: ByteRange | None,
    lease_seconds: int,
) -> Opened:
    """Create the import record (status running, ``ranges_total`` ranges of ``range_bytes``)
    with its ``import.start`` audit record, and with ``first`` the lease of that range, in one
    transaction.
    ``created`` is False when the import exists already (a redelivered event)."""
    m = dynamo.tasks()
    at = utcnow()
    item = m.ImportItem(
        PK=keys.project_pk(project_id),
        SK=keys.import_sk(import_id),
        GSI2PK=keys.imports_gsi2pk(project_id),
        GSI2SK=keys.time_sort_key(at, import_id),
        import_id=import_id,
        project_id=project_id,
        source=ImportSource.MANIFEST.value,
        bucket=bucket,
        key=key,
        status=RUNNING,
        ranges_total=ranges_total,
        ranges_done=0,
        range_bytes=range_bytes,
        created_by=actor.user_id,
        created_at=at,
        updated_at=at,
    )
    tx = dynamo.Tx()
    tx.put(item, condition="attribute_not_exists(PK)")
    owner, lease_until = ids.new_id("lease"), int(time.time()) + lease_seconds
    if first is not None:
        tx.put(
            _range_item(project_id, import_id, first, owner, lease_until),
            condition="attribute_not_exists(PK)",
        )
    audit.record(
        tx,
        actor,
        "import.start",
        "import",
        import_id,
        project_id,
        after={"source": ImportSource.MANIFEST.value, "bucket": bucket, "key": key, "ranges": ranges_total},
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return Opened(created=False)
    if first is None:
        return Opened(created=True)
    return Opened(True, RangeClaim(project_id, import_id, first, owner, lease_until))


def state(project_id: str, import_id: str) -> ImportState:
    """The import's progress and counts (a consistent read)."""
    m = dynamo.tasks()
    try:
        item = m.ImportItem.get(keys.project_pk(project_id), keys.import_sk(import_id), consistent_read=True)
    except m.ImportItem.DoesNotExist:
        raise NotFound(f"import {import_id} not found", details={"import_id": import_id}) from None
    return ImportState(
        status=ImportStatus(item.status),
        ranges_total=int(item.ranges_total or 1),
        ranges_done=int(item.ranges_done or 0),
        ranges_queued=bool(item.ranges_queued),
        range_bytes=int(item.range_bytes) if item.range_bytes else None,
        lines_total=int(item.lines_total or 0),
        tasks_created=int(item.tasks_created or 0),
        duplicates=int(item.duplicates or 0),
        errors=int(item.errors or 0),
    )


def mark_queued(project_id: str, import_id: str) -> None:
    """Record that every range's message was sent (a redelivered event then sends none)."""
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        _import_key(project_id, import_id),
        "SET ranges_queued = :yes, updated_at = :at",
        values={":yes": True, ":at": utcnow()},
        condition="attribute_exists(PK)",
    )
    tx.commit()


def claim(project_id: str, import_id: str, byte_range: ByteRange, lease_seconds: int) -> RangeClaim | None:
    """Take (or resume) a range. ``None`` when there is nothing to do: the range is done, or
    the import is no longer running. Raises ImportBusy while another worker's lease is live."""
    owner, now = ids.new_id("lease"), int(time.time())
    lease_until = now + lease_seconds
    tx = dynamo.Tx()
    _check_running(tx, project_id, import_id)
    tx.put(
        _range_item(project_id, import_id, byte_range, owner, lease_until),
        condition="attribute_not_exists(PK)",
    )
    try:
        tx.commit()
        return RangeClaim(project_id, import_id, byte_range, owner, lease_until)
    except dynamo.TransactionCancelled as exc:
        if 0 in exc.failed:
            return None
    m = dynamo.tasks()
    existing = m.ImportRangeItem.get(
        keys.project_pk(project_id), keys.import_range_sk(import_id, byte_range.index), consistent_read=True
    )
    if existing.status == RANGE_DONE:
        return None
    if int(existing.lease_until or 0) >= now:
        raise ImportBusy(
            f"range {byte_range.index} of import {import_id} is being processed by another worker"
        )
    tx = dynamo.Tx()
    _check_running(tx, project_id, import_id)
    tx.update(
        settings().TASKS_TABLE,
        _range_key(project_id, import_id, byte_range.index),
        "SET lease_until = :l, lease_owner = :owner, updated_at = :at",
        names={"#s": "status"},
        values={":l": lease_until, ":owner": owner, ":at": utcnow(), ":running": RANGE_RUNNING, ":now": now},
        condition="#s = :running AND lease_until < :now",
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if 0 in exc.failed:
            return None
        raise ImportBusy(
            f"range {byte_range.index} of import {import_id} was taken by another worker"
        ) from exc
    return RangeClaim(
        project_id,
        import_id,
        byte_range,
        owner,
        lease_until,
        committed=int(existing.committed if existing.committed is not None else -1),
        resumed=True,
        tasks_created=int(existing.tasks_created or 0),
        duplicates=int(existing.duplicates or 0),
        refused=int(existing.refused or 0),
        refused_lines=imports.refused_lines_of(existing),
    )


def checkpoint(
    c: RangeClaim,
    committed: int,
    created: int,
    duplicates: int,
    counter_deltas: dict[str, int],
    lease_seconds: int,
    refused: Sequence[LineError] = (),
) -> RangeClaim:
    """Advance the range to ``committed`` (an offset) and add the counts of the tasks written
    since to the range, the import and a counter shard, atomically (see the module docstring)."""
    cfg = settings()
    at = utcnow()
    tx = dynamo.Tx()
    lease_until, kept = imports.add_checkpoint(
        tx,
        _range_key(c.project_id, c.import_id, c.range.index),
        position_attr="committed",
        position=committed,
        previous=c.committed,
        owner=c.owner,
        lease_seconds=lease_seconds,
        created=created,
        duplicates=duplicates,
        refused=refused,
        kept_before=len(c.refused_lines),
    )
    tx.update(
        cfg.TASKS_TABLE,
        _import_key(c.project_id, c.import_id),
        "SET updated_at = :at ADD tasks_created :c, duplicates :d, refused :r",
        values={":at": at, ":c": created, ":d": duplicates, ":r": len(refused)},
        condition="attribute_exists(PK)",
    )
    dynamo.add_counter(tx, c.project_id, f"{c.import_id}#{c.range.index}#{committed}", counter_deltas)
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise ImportBusy(f"lost the lease on range {c.range.index} of import {c.import_id}") from exc
    return RangeClaim(
        c.project_id,
        c.import_id,
        c.range,
        c.owner,
        lease_until,
        committed,
        c.resumed,
        tasks_created=c.tasks_created + created,
        duplicates=c.duplicates + duplicates,
        refused=c.refused + len(refused),
        refused_lines=c.refused_lines + kept,
    )


def release(c: RangeClaim) -> None:
    """Give the range's lease back so a continuation can claim it at once."""
    tx = dynamo.Tx()
    tx.update(
        settings().TASKS_TABLE,
        _range_key(c.project_id, c.import_id, c.range.index),
        "SET lease_until = :zero",
        values={":zero": 0, ":owner": c.owner},
        condition="lease_owner = :owner",
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise ImportBusy(f"lost the lease on range {c.range.index} of import {c.import_id}") from exc


def complete(
    c: RangeClaim,
    *,
    lines: int,
    parsed: int,
    errors: int,
    error_part_key: str | None,
    finish: Finish | None = None,
) -> None:
    """Mark the range done and add its lines (``parsed`` of them not blank, ``errors`` of those
    broken, refusals included) to the import, once. With ``finish`` (a one-range import) the
    import finishes in the same transaction. Raises ImportClosed when the import is no longer
    running, ImportBusy when the range's lease was lost."""
    cfg = settings()
    at = utcnow()
    tx = dynamo.Tx()
    tx.update(
        cfg.TASKS_TABLE,
        _range_key(c.project_id, c.import_id, c.range.index),
        "SET #s = :done, #lines = :lines, parsed = :parsed, #e = :e, lease_until = :zero, updated_at = :at"
        + (", error_part_key = :part" if error_part_key else ""),
        names={"#s": "status", "#lines": "lines", "#e": "errors"},
        values={
            ":done": RANGE_DONE,
            ":lines": lines,
            ":parsed": parsed,
            ":e": errors,
            ":zero": 0,
            ":at": at,
            ":owner": c.owner,
            ":running": RANGE_RUNNING,
            **({":part": error_part_key} if error_part_key else {}),
        },
        condition="#s = :running AND lease_owner = :owner",
    )
    expression = "SET updated_at = :at ADD ranges_done :one, lines_total :parsed, #e :e"
    values: dict[str, Any] = {":at": at, ":one": 1, ":parsed": parsed, ":e": errors, ":running": RUNNING}
    condition = "#s = :running AND ranges_done < ranges_total"
    if finish is not None:
        expression = (
            "SET updated_at = :at, #s = :final, completed_at = :at, lease_until = :zero"
            + (", error_report_key = :report" if finish.error_report_key else "")
            + " ADD ranges_done :one, lines_total :parsed, #e :e"
        )
        values |= {":final": finish.status.value, ":zero": 0, ":total": 1}
        if finish.error_report_key:
            values[":report"] = finish.error_report_key
        condition = "#s = :running AND ranges_done = :zero AND ranges_total = :total"
    tx.update(
        cfg.TASKS_TABLE,
        _import_key(c.project_id, c.import_id),
        expression,
        names={"#s": "status", "#e": "errors"},
        values=values,
        condition=condition,
    )
    if finish is not None:
        counts = {"lines_total": parsed, "tasks_created": c.tasks_created, "duplicates": c.duplicates}
        _audit_complete(tx, c.project_id, c.import_id, finish, counts={**counts, "errors": errors})
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if 0 in exc.failed:
            raise ImportBusy(f"lost the lease on range {c.range.index} of import {c.import_id}") from exc
        raise ImportClosed(c.import_id) from exc


def ranges(project_id: str, import_id: str) -> list[RangeRecord]:
    """Every range of the import that has an item, in file order (consistent Queries)."""
    cfg = settings()
    request: dict[str, Any] = {
        "TableName": cfg.TASKS_TABLE,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
        "ExpressionAttributeValues": {
            ":pk": {"S": keys.project_pk(project_id)},
            ":prefix": {"S": keys.import_range_sk_prefix(import_id)},
        },
        "ConsistentRead": True,
    }
    records: list[RangeRecord] = []
    while True:
        response = clients.dynamodb().query(**request)
        for item in response.get("Items", []):
            part = item.get("error_part_key", {}).get("S")
            records.append(
                RangeRecord(
                    index=int(item["index"]["N"]),
                    done=item["status"]["S"] == RANGE_DONE,
                    lines=int(item.get("lines", {}).get("N", 0)),
                    errors=int(item.get("errors", {}).get("N", 0)),
                    error_part_key=part,
                )
            )
        start = response.get("LastEvaluatedKey")
        if not start:
            return records
        request["ExclusiveStartKey"] = start


def finish(project_id: str, import_id: str, final: Finish, counts: ImportState) -> bool:
    """Give the import its final status, with its ``import.complete`` audit record, once every
    range is done (``counts``: its state then). False when it was finished already."""
    tx = dynamo.Tx()
    expression = "SET #s = :final, completed_at = :at, updated_at = :at, lease_until = :zero"
    values: dict[str, Any] = {
        ":final": final.status.value,
        ":at": utcnow(),
        ":zero": 0,
        ":running": RUNNING,
    }
    if final.error_report_key:
        expression += ", error_report_key = :report"
        values[":report"] = final.error_report_key
    tx.update(
        settings().TASKS_TABLE,
        _import_key(project_id, import_id),
        expression,
        names={"#s": "status"},
        values=values,
        condition="#s = :running AND ranges_done = ranges_total",
    )
    _audit_complete(
        tx,
        project_id,
        import_id,
        final,
        counts=counts.counts(),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True


def fail(project_id: str, import_id: str, final: Finish, reason: str) -> bool:
    """Fail a running import (a range can never be read: the object changed or is gone), once,
    with its audit record. False when it was no longer running."""
    tx = dynamo.Tx()
    at = utcnow()
    tx.update(
        settings().TASKS_TABLE,
        _import_key(project_id, import_id),
        # the reason on the item too: import.failed carries it to webhook consumers
        "SET #s = :failed, completed_at = :at, updated_at = :at, lease_until = :zero, reason = :reason"
        " ADD #e :one",
        names={"#s": "status", "#e": "errors"},
        values={
            ":failed": ImportStatus.FAILED.value,
            ":at": at,
            ":zero": 0,
            ":one": 1,
            ":running": RUNNING,
            ":reason": reason[:500],
        },
        condition="#s = :running",
    )
    _audit_complete(
        tx,
        project_id,
        import_id,
        final,
        counts=state(project_id, import_id).counts(extra_errors=1),
        reason=reason,
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return False
    return True


def _audit_complete(
    tx: dynamo.Tx,
    project_id: str,
    import_id: str,
    finish: Finish,
    counts: dict[str, int],
    reason: str | None = None,
) -> None:
    """The import's one ``import.complete`` record: counts only (a manifest's task ids are never
    all in memory); its pointer is the import, whose id every task it created carries."""
    after: dict[str, Any] = {
        "status": finish.status.value,
        "error_report_key": finish.error_report_key,
        "source": {"bucket": finish.bucket, "key": finish.key},
    }
    if reason:
        after["reason"] = reason[:500]
    audit.record(
        tx, finish.actor, "import.complete", "import", import_id, project_id, after=after, counts=counts
    )
