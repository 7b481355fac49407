"""Audit exports: a project's audit records, streamed to S3 as JSON Lines or CSV by a job.

The worker reads the records oldest first, one Query page at a time, and writes them
through a :class:`~serval.adapters.jobs.ResultWriter` (S3 multipart upload, parts of
``PART_BYTES``), so memory stays flat however many records there are.

The export covers records *before the job was created* (and inside the requested range),
so a redelivered job rewrites exactly the same file, and the export's own audit records
never appear in it.

CSV has a fixed header, :data:`CSV_COLUMNS`; ``before``, ``after`` and ``counts`` are
compact JSON strings (sorted keys); a missing value is an empty cell. A cell that a
spreadsheet would run as a formula (a caller-chosen user agent ``=HYPERLINK(...)``) is
written with a leading ``'`` (:mod:`serval.domain.csv_safe`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from serval import keys
from serval.adapters import audit, audit_queries, projects
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.audit import CHAIN_FIELDS, OPTIONAL_SEALED_FIELDS, SEALED_FIELDS, AuditRecord
from serval.domain.csv_safe import SafeWriter
from serval.domain.jobs import (
    AuditExportCreate,
    AuditExportFormat,
    Job,
    JobCounts,
    JobKind,
    JobTimedOut,
    audit_export_key,
)
from serval.errors import ValidationFailed
from serval.logic import jobs
from serval.logic.audit_queries import check_range
from serval.settings import settings

PART_BYTES = job_store.DEFAULT_PART_BYTES
DEADLINE_MARGIN_S = 30.0
CHECK_EVERY = 500  # records between deadline checks
FLUSH_BYTES = 256 * 1024  # encoded rows are handed to the writer in chunks of about this size

# Identity and time first, then the rest of the sealed fields, then the chain link.
CSV_COLUMNS: tuple[str, ...] = (
    "audit_id",
    "at",
    *(f for f in SEALED_FIELDS if f not in ("audit_id", "at")),
    *OPTIONAL_SEALED_FIELDS,
    *CHAIN_FIELDS,
)
JSON_COLUMNS = frozenset({"before", "after", "counts"})


def start(project_id: str, request: AuditExportCreate, actor: Actor) -> Job:
    """Queue an export of a project's audit records (404 for an unknown project)."""
    projects.get(project_id)
    job = job_store.new(
        project_id, JobKind.AUDIT_EXPORT, request.model_dump(mode="json", exclude_none=True), actor.user_id
    )
    return jobs.submit(job, actor, "audit.export")


def csv_row(record: AuditRecord) -> list[str]:
    """A record as a CSV row in :data:`CSV_COLUMNS` order."""
    values = record.model_dump(mode="json")
    row = []
    for column in CSV_COLUMNS:
        value: Any = values.get(column)
        if value is None:
            row.append("")
        elif column in JSON_COLUMNS:
            row.append(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        else:
            row.append(str(value))
    return row


def jsonl_line(record: AuditRecord) -> str:
    return record.model_dump_json() + "\n"


class _Encoder:
    """Turns records into the export's bytes, a chunk at a time."""

    def __init__(self, fmt: AuditExportFormat) -> None:
        self.fmt = fmt
        self._text = io.StringIO()
        self._csv = SafeWriter(self._text) if fmt is AuditExportFormat.CSV else None

    def header(self) -> None:
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)

    def add(self, record: AuditRecord) -> None:
        if self._csv is not None:
            self._csv.writerow(csv_row(record))
        else:
            self._text.write(jsonl_line(record))

    def pending(self) -> int:
        return self._text.tell()

    def take(self) -> bytes:
        data = self._text.getvalue().encode("utf-8")
        self._text.seek(0)
        self._text.truncate()
        return data


def _request(job: Job) -> AuditExportCreate:
    try:
        return AuditExportCreate.model_validate(job.params)
    except ValidationError as exc:
        raise ValidationFailed(f"the export's parameters are invalid: {exc.errors()[:3]}") from exc


def run(claim: job_store.Claim, time_left: Callable[[], float]) -> jobs.RunResult:
    """Write the export of a claimed job to the exports bucket; returns its counts and key."""
    job = claim.job
    request = _request(job)
    since, until = check_range(request.since, request.until)
    until = min(until, job.created_at) if until else job.created_at
    key = audit_export_key(job.project_id, job.job_id, request.format)
    writer = job_store.ResultWriter(
        settings().EXPORT_BUCKET, key, request.format.content_type, part_size=PART_BYTES
    )
    encoder = _Encoder(request.format)
    encoder.header()
    written = 0
    try:
        if since is None or since < until:
            f = audit_queries.AuditFilter(
                partition=keys.audit_pk(job.project_id),
                actor_id=request.actor,
                since=since,
                until=until,
                descending=False,
            )
            for raw in audit_queries.iter_raw(f):
                encoder.add(audit.record_from_item(raw))
                written += 1
                if encoder.pending() >= FLUSH_BYTES:
                    writer.write(encoder.take())
                if written % CHECK_EVERY == 0 and time_left() < DEADLINE_MARGIN_S:
                    raise JobTimedOut(
                        f"the export stopped after {written} records: it did not finish in time"
                    )
        writer.write(encoder.take())
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return jobs.RunResult(JobCounts(done=written), key)
