"""Domain entities and the API's input models (pydantic, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serval.domain.label_config import LabelConfig
from serval.domain.lifecycle import TaskStatus
from serval.domain.limits import MAX_INLINE_TEXT, MAX_METADATA_BYTES, json_bytes
from serval.domain.media import MediaType
from serval.domain.results import Result

MAX_TAGS = 40  # a tag change must fit one transaction with its links (<= 100 actions)
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^#\s][^#]*$")]
DataKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


def utcnow() -> str:
    """ISO-8601 UTC timestamp with milliseconds: sorts lexically in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_of(epoch: float) -> str:
    """An epoch time as :func:`utcnow` writes times."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch_of(iso: str) -> float:
    """The epoch seconds of an ISO-8601 time (``Z`` or an offset)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class PriorityMode(StrEnum):
    PRIORITY = "priority"
    FIFO = "fifo"
    RANDOM = "random"
    LEAST_CONFIDENT = "least_confident"


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap: int = Field(default=1, ge=1, le=10, description="Distinct annotators per task.")
    priority_mode: PriorityMode = PriorityMode.PRIORITY
    auto_label_threshold: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Predictions at or above this go to review only."
    )
    max_rework_rounds: int = Field(default=3, ge=0, le=20)
    agreement_threshold: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="With overlap >= 2, tasks whose annotators agree below this go to review; "
        "the others are accepted by consensus.",
    )
    gold_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Probability that /next offers a gold task first."
    )
    annotators_see_all: bool = Field(default=False, description="Annotators may read others' annotations.")


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5_000)
    media_types: list[MediaType] = Field(min_length=1)
    label_config: LabelConfig
    settings: ProjectSettings = Field(default_factory=ProjectSettings)

    @model_validator(mode="after")
    def _config_fits_media(self) -> ProjectCreate:
        problems = self.label_config.check_media(self.media_types)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5_000)
    media_types: list[MediaType] | None = Field(default=None, min_length=1)
    label_config: LabelConfig | None = None
    settings: ProjectSettings | None = None


class Project(BaseModel):
    project_id: str
    name: str
    description: str
    media_types: list[MediaType]
    label_config: LabelConfig
    settings: ProjectSettings
    status: ProjectStatus = ProjectStatus.ACTIVE
    created_by: str
    created_at: str
    updated_at: str


class S3Ref(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["s3"] = "s3"
    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1, max_length=1024)
    version_id: str | None = None
    media_type: MediaType | None = None
    content_type: str | None = None
    size: int | None = Field(default=None, ge=0)


class TextRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["text"] = "text"
    text: str = Field(max_length=MAX_INLINE_TEXT)

    @field_validator("text")
    @classmethod
    def _bytes(cls, value: str) -> str:
        if len(value) > MAX_INLINE_TEXT // 4 and len(value.encode()) > MAX_INLINE_TEXT:
            raise ValueError(f"inline text is larger than {MAX_INLINE_TEXT} bytes; put it in S3")
        return value


DataRef = Annotated[S3Ref | TextRef, Field(discriminator="kind")]


class Prediction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_version: str = Field(min_length=1, max_length=200)
    score: float = Field(ge=0.0, le=1.0)
    results: list[Result] = Field(default_factory=list)
    created_at: str = Field(default_factory=utcnow)


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if json_bytes(value, default=str) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes stored")
    return value


class TaskCreate(BaseModel):
    """One task in a bulk create call or a manifest line, after normalization."""

    model_config = ConfigDict(extra="forbid")

    data: dict[DataKey, DataRef] = Field(min_length=1, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    external_id: str | None = Field(
        default=None, min_length=1, max_length=256, description="Your id: re-sending it never duplicates."
    )
    predictions: list[Prediction] = Field(default_factory=list, max_length=10)

    @field_validator("metadata")
    @classmethod
    def _meta(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_metadata(value)

    @field_validator("data")
    @classmethod
    def _no_empty_text(cls, value: dict[str, S3Ref | TextRef]) -> dict[str, S3Ref | TextRef]:
        empty = [name for name, ref in value.items() if isinstance(ref, TextRef) and not ref.text.strip()]
        if empty:
            raise ValueError(f"inline text is empty in {empty}: a task needs something to annotate")
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _dedupe_tags(cls, tags: Any) -> Any:
        return list(dict.fromkeys(tags)) if isinstance(tags, list) else tags


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _meta(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return value if value is None else _check_metadata(value)

    @model_validator(mode="after")
    def _not_empty(self) -> TaskPatch:
        if self.tags is None and self.priority is None and self.metadata is None:
            raise ValueError("nothing to change: give tags, priority or metadata")
        return self


class TaskSource(BaseModel):
    """Where a task came from; the identity that makes ingestion idempotent."""

    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    version_id: str | None = None
    line: int | None = Field(default=None, description="The task's position in a bulk create (1-based).")
    offset: int | None = Field(
        default=None,
        description="A manifest task's byte offset in its manifest: where its line (a CSV row: its "
        "first line) starts. With the object's identity it names the task, however the manifest was split.",
    )


class Task(BaseModel):
    task_id: str
    project_id: str
    data: dict[str, DataRef]
    media_type: MediaType
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    priority: int = 0
    status: TaskStatus = TaskStatus.NEW
    predictions: list[Prediction] = Field(default_factory=list)
    external_id: str | None = None
    import_id: str | None = None
    source: TaskSource | None = None
    annotation_count: int = 0
    accepted_annotation_id: str | None = Field(
        default=None,
        description="The annotation the workflow accepted when the task was approved (the round's "
        "answer, or the reviewer's edit): what dataset exports ship for the task.",
    )
    created_at: str
    updated_at: str

    def primary_text_length(self) -> int | None:
        texts = [ref.text for ref in self.data.values() if isinstance(ref, TextRef)]
        return len(texts[0]) if len(texts) == 1 else None


def new_task(
    spec: TaskCreate,
    *,
    task_id: str,
    project_id: str,
    media_type: MediaType,
    import_id: str,
    source: TaskSource,
) -> Task:
    """A new task (status ``new``) from a validated TaskCreate."""
    now = utcnow()
    return Task(
        task_id=task_id,
        project_id=project_id,
        data=spec.data,
        media_type=media_type,
        metadata=spec.metadata,
        tags=spec.tags,
        priority=spec.priority,
        status=TaskStatus.NEW,
        predictions=spec.predictions,
        external_id=spec.external_id,
        import_id=import_id,
        source=source,
        created_at=now,
        updated_at=now,
    )


class AnnotationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[Result] = Field(min_length=1, max_length=50)
    lead_time_s: float = Field(default=0.0, ge=0.0, le=7 * 24 * 3600, description="Seconds spent labelling.")
    label_config_version: int | None = Field(default=None, ge=1)


class AnnotationSource(StrEnum):
    HUMAN = "human"
    PREDICTION = "prediction"


class Annotation(BaseModel):
    annotation_id: str
    task_id: str
    project_id: str
    author: str
    results: list[Result]
    lead_time_s: float
    label_config_version: int
    created_at: str
    source: AnnotationSource = Field(
        default=AnnotationSource.HUMAN,
        description="human, or prediction: a model's prediction accepted as the annotation (bulk accept_predictions).",
    )
    model_version: str | None = Field(default=None, description="The accepted prediction's model version.")
    accepted_by: str | None = Field(
        default=None,
        description="Who accepted the prediction (the bulk job's creator), on whose behalf the system acted.",
    )


class MediaLink(BaseModel):
    """A presigned GET URL of one of a task's S3 objects, for the browser to show it."""

    url: str = Field(
        description="Presigned GET URL; it needs no other credentials and stops working at expires_at."
    )
    expires_at: int = Field(
        description="Epoch seconds. A heartbeat (or reading the task again) hands out fresh URLs."
    )


class Rejection(BaseModel):
    """A task's last review rejection as the task keeps it (until an approval)."""

    comment: str | None = None
    reviewer: str
    rejected_at: str
    annotation_ids: list[str] = Field(default_factory=list)


class Rework(BaseModel):
    """The review that sent a task back: what the annotator needs to redo it."""

    comment: str | None = Field(description="The reviewer's comment, if they wrote one.")
    reviewer: str = Field(description="The reviewer who rejected the task (user id).")
    rejected_at: str = Field(description="ISO-8601 UTC time of the rejection.")
    rejected_annotations: list[Annotation] = Field(
        description="The rejected round's annotations the caller may read (an annotator: their own, "
        "unless the project lets annotators see all): their results are the rejected regions."
    )


class TaskDetail(Task):
    """A task as the workspace shows it: a lease, a heartbeat and the task's detail return this."""

    media: dict[str, MediaLink] = Field(
        default_factory=dict,
        description="For each `data` field that references an S3 object in this project's prefix "
        "of the data bucket: a presigned GET URL. A field referencing anything else gets none.",
    )
    rework: Rework | None = Field(
        default=None,
        description="Set while the task's last review was a rejection (until it is approved).",
    )


class ImportStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"


class ImportSource(StrEnum):
    S3_OBJECT = "s3_object"
    MANIFEST = "manifest"
    API = "api"


class Import(BaseModel):
    import_id: str
    project_id: str
    source: ImportSource
    bucket: str | None = None
    key: str | None = None
    status: ImportStatus
    lines_total: int = 0
    tasks_created: int = 0
    duplicates: int = 0
    errors: int = 0
    error_report_key: str | None = None
    ranges_total: int = Field(
        default=1, description="Byte ranges the manifest is imported in (one invocation each)."
    )
    ranges_done: int = Field(default=0, description="Byte ranges imported so far.")
    created_by: str | None = None
    created_at: str
    updated_at: str
    completed_at: str | None = None


class LineError(BaseModel):
    """One broken manifest line, as written to the import's error report."""

    line: int = Field(description="The line's number in the manifest (1-based; a CSV row: its last line).")
    offset: int | None = Field(
        default=None, description="The byte offset where the line (a CSV row: its first line) starts."
    )
    error: str
    raw: str = Field(max_length=2_000)
