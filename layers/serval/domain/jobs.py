"""Async jobs: one generic model for every long-running operation (pydantic, no AWS).

A job is created by the API (with its audit record, in one transaction), announced on the
jobs queue, then run by the jobs worker:

    queued -> running -> succeeded | failed       (queued -> failed when it cannot be queued)

``kind`` says what to run and ``params`` hold that kind's validated request. ``counts``
report progress and outcome (``done``: items processed, e.g. records exported; ``failed``:
items that could not be). A finished job is never run again, so a redelivered message is a
no-op.

A dataset export of a large project *fans out* (see docs/exports.md): its job message
becomes one ``shard`` message per task-id range, then one ``assemble`` message; the job
stays ``running`` meanwhile and reports ``shards``/``shards_done``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from serval.errors import ServalError


class JobKind(StrEnum):
    AUDIT_EXPORT = "audit_export"
    DATASET_EXPORT = "dataset_export"
    BULK = "bulk"


class JobStep(StrEnum):
    """What a jobs-queue message asks for: run the job, or one step of a fanned-out export."""

    RUN = "run"
    SHARD = "shard"  # gather one task-id range into a shard file
    ASSEMBLE = "assemble"  # join the shard files into the result


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobCounts(BaseModel):
    done: int = Field(default=0, description="Items processed (for an audit export: records written).")
    failed: int = Field(default=0, description="Items that could not be processed.")


class Job(BaseModel):
    job_id: str
    project_id: str
    kind: JobKind
    status: JobStatus
    params: dict[str, Any] = Field(description="The kind's request, as validated when the job was created.")
    counts: JobCounts = Field(default_factory=JobCounts)
    result_key: str | None = Field(default=None, description="Where the result is, in the exports bucket.")
    error: str | None = None
    attempts: int = Field(default=0, description="How many times a worker took the job.")
    shards: int | None = Field(
        default=None,
        description="Parts a large dataset export fanned out into (null: it runs in one piece).",
    )
    shards_done: int | None = Field(
        default=None, description="Parts gathered so far (counts add up as each one finishes)."
    )
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None


class JobView(Job):
    """A job as the API shows it: with a short-lived download link once it succeeded."""

    download_url: str | None = Field(default=None, description="Presigned GET of the result, when ready.")


class JobMessage(BaseModel):
    """The body of a jobs-queue message: which job to run (everything else is on the job item)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    project_id: str = Field(min_length=1, max_length=64)
    step: JobStep = JobStep.RUN
    shard: int | None = Field(default=None, ge=0, description="The shard to gather (step shard).")
    shards: int | None = Field(default=None, ge=2, description="How many shards the job has (step shard).")

    @model_validator(mode="after")
    def _shard(self) -> JobMessage:
        if (self.step is JobStep.SHARD) != (self.shard is not None and self.shards is not None):
            raise ValueError("a shard message names its shard and shard count, and only it does")
        if self.shard is not None and self.shards is not None and self.shard >= self.shards:
            raise ValueError("shard must be less than shards")
        return self


class JobBusy(ServalError):
    """Another worker holds this job's lease; the message is retried later."""

    code = "job_busy"


class JobPaused(ServalError):
    """The runner checkpointed and released the job before the worker's deadline: run it again."""

    code = "job_paused"


class JobFannedOut(ServalError):
    """The runner split the job into parts queued as their own messages; they finish it."""

    code = "job_fanned_out"


class JobTimedOut(ServalError):
    """The job could not finish before the worker's deadline."""

    code = "job_timed_out"


# ---- audit export --------------------------------------------------------------------------


class AuditExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"

    @property
    def content_type(self) -> str:
        return "application/x-ndjson" if self is AuditExportFormat.JSONL else "text/csv"


class AuditExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: AuditExportFormat = AuditExportFormat.JSONL
    since: AwareDatetime | None = Field(default=None, description="Records at or after this time.")
    until: AwareDatetime | None = Field(default=None, description="Records before this time.")
    actor: str | None = Field(default=None, min_length=1, max_length=128, description="Only this user's.")

    @model_validator(mode="after")
    def _range(self) -> AuditExportCreate:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


def audit_export_key(project_id: str, job_id: str, fmt: AuditExportFormat) -> str:
    return f"audit-exports/{project_id}/{job_id}.{fmt.value}"
