"""Bulk operations on a project's tasks, run as async jobs (pydantic, no AWS).

A request names one operation and a selection: an explicit id list (up to
:data:`MAX_TASK_IDS`) or a filter. The worker first resolves the selection into a fixed
work list (so a filter's result does not shift while the job changes the tasks it
selected), then applies the operation in chunks, checkpointing its offset and counts on
the job item. Every operation is idempotent per task, so a chunk that is re-run after a
crash never double-applies.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from serval import ids
from serval.domain.jobs import JobView
from serval.domain.lifecycle import TaskStatus
from serval.domain.media import MediaType
from serval.domain.models import MAX_TAGS, Tag

MAX_TASK_IDS = 100_000
INLINE_TASK_IDS = 1_000  # longer id lists go to S3: a job item is limited to 400 KB
MAX_FAILURES_SHOWN = 10  # reasons kept on the job for the first failed tasks
PRIORITY_BOUND = 1_000_000


class BulkOperation(StrEnum):
    TAG = "tag"
    UNTAG = "untag"
    SET_PRIORITY = "set_priority"
    ARCHIVE = "archive"
    DELETE = "delete"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    REQUEUE = "requeue"
    ACCEPT_PREDICTIONS = "accept_predictions"


class BulkFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    tag: Tag | None = None
    media_type: MediaType | None = None
    created_from: AwareDatetime | None = Field(default=None, description="Tasks created at or after this.")
    created_to: AwareDatetime | None = Field(default=None, description="Tasks created before this.")

    @model_validator(mode="after")
    def _range(self) -> BulkFilter:
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise ValueError("created_from must be before created_to")
        return self


class BulkSelection(BaseModel):
    """Exactly one of ``task_ids`` and ``filter``."""

    model_config = ConfigDict(extra="forbid")

    task_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_TASK_IDS)
    filter: BulkFilter | None = None

    @model_validator(mode="after")
    def _one(self) -> BulkSelection:
        if (self.task_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of task_ids and filter")
        if self.task_ids is not None and any(not t or len(t) > 64 for t in self.task_ids):
            raise ValueError("task ids are 1 to 64 characters")
        return self


class BulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: BulkOperation
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=MAX_TAGS)
    priority: int | None = Field(default=None, ge=-PRIORITY_BOUND, le=PRIORITY_BOUND)
    user_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="assign: a project member who may annotate."
    )
    selection: BulkSelection

    @model_validator(mode="after")
    def _per_operation(self) -> BulkCreate:
        """Each operation's own field is required for it and refused for every other one."""
        op = self.operation
        fields = (
            ("tags", self.tags, (BulkOperation.TAG, BulkOperation.UNTAG)),
            ("priority", self.priority, (BulkOperation.SET_PRIORITY,)),
            ("user_id", self.user_id, (BulkOperation.ASSIGN,)),
        )
        for name, value, needed_by in fields:
            if op in needed_by and value is None:
                raise ValueError(f"{op.value} needs {name}")
            if op not in needed_by and value is not None:
                raise ValueError(f"{op.value} takes no {name}")
        return self

    def fingerprint(self) -> str:
        """A digest of the request: an idempotency key reused with another body is a conflict."""
        return ids.fingerprint(self)


class StoredSelection(BaseModel):
    """A selection as the job keeps it: a long id list is replaced by its S3 key."""

    task_ids: list[str] | None = None
    task_ids_key: str | None = None
    task_count: int | None = None
    filter: BulkFilter | None = None


class BulkParams(BaseModel):
    """A bulk job's ``params``."""

    operation: BulkOperation
    tags: list[str] | None = None
    priority: int | None = None
    user_id: str | None = None
    selection: StoredSelection


def job_params(request: BulkCreate, ids_key: str | None) -> BulkParams:
    """The job's params for a request; ``ids_key`` holds the id list when it is stored in S3."""
    selection = StoredSelection(filter=request.selection.filter)
    task_ids = request.selection.task_ids
    if task_ids is not None:
        if ids_key is None:
            selection.task_ids = task_ids
        else:
            selection.task_ids_key, selection.task_count = ids_key, len(task_ids)
    return BulkParams(
        operation=request.operation,
        tags=request.tags,
        priority=request.priority,
        user_id=request.user_id,
        selection=selection,
    )


def store_ids_in_s3(request: BulkCreate) -> bool:
    return request.selection.task_ids is not None and len(request.selection.task_ids) > INLINE_TASK_IDS


class BulkFailure(BaseModel):
    task_id: str
    reason: str


class BulkJobView(JobView):
    """A bulk job with its progress through the resolved selection."""

    processed: int = Field(default=0, description="Tasks of the selection handled so far.")
    total: int | None = Field(default=None, description="Tasks in the selection, once resolved.")
    failures: list[BulkFailure] = Field(
        default_factory=list, description=f"The first {MAX_FAILURES_SHOWN} tasks that failed, and why."
    )


def describe_failures(failed: int, failures: list[BulkFailure]) -> str | None:
    """The job's error text for a job that finished with failed tasks."""
    if not failed:
        return None
    shown = "; ".join(f"{f.task_id}: {f.reason}" for f in failures[:MAX_FAILURES_SHOWN])
    return f"{failed} task(s) failed, e.g. {shown}"
