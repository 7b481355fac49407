"""Dataset exports: the request, the record every converter reads, and which tasks go in.

Converters (one module per format family) are pure and streaming: each takes an iterator of
:class:`ExportRecord` and yields ``bytes`` chunks (zip formats go through
:func:`serval.domain.exports.archive.zip_chunks`), holding at most one task in memory
(COCO spools its two arrays to temporary files).

**Which annotation is exported** (:func:`exported`): the annotation the workflow accepted,
recorded on the task when it was approved (``accepted_annotation_id``: the round's answer, the
consensus, or the reviewer's edit), never a later one. A task without an accepted annotation
(not approved yet) exports its latest annotation (annotation ids are time-ordered, so the
greatest id) as work in progress. ``label_config_version`` restricts either to that version;
a task with no (matching) annotation is exported without labels.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Annotation, S3Ref, Task, TextRef

MAX_FILTER_VALUES = 20


class ExportFormat(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    COCO = "coco"
    YOLO = "yolo"
    VOC = "voc"
    CONLL = "conll"
    GROUNDTRUTH = "groundtruth"

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]

    @property
    def needs_image_size(self) -> bool:
        """Formats with pixel coordinates: a task whose image size is unknown cannot be written."""
        return self in (ExportFormat.COCO, ExportFormat.VOC)


_EXTENSIONS = {
    ExportFormat.JSON: "json",
    ExportFormat.JSONL: "jsonl",
    ExportFormat.CSV: "csv",
    ExportFormat.COCO: "coco.json",
    ExportFormat.YOLO: "yolo.zip",
    ExportFormat.VOC: "voc.zip",
    ExportFormat.CONLL: "conll.txt",
    ExportFormat.GROUNDTRUTH: "manifest.jsonl",
}
_CONTENT_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.CSV: "text/csv",
    ExportFormat.COCO: "application/json",
    ExportFormat.YOLO: "application/zip",
    ExportFormat.VOC: "application/zip",
    ExportFormat.CONLL: "text/plain",
    ExportFormat.GROUNDTRUTH: "application/x-ndjson",
}


class ExportFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: list[TaskStatus] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only tasks in one of these statuses."
    )
    tags: list[str] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only tasks with at least one of these tags."
    )
    created_from: AwareDatetime | None = Field(
        default=None, description="Tasks created at or after this time."
    )
    created_to: AwareDatetime | None = Field(default=None, description="Tasks created before this time.")
    approved_only: bool = Field(default=False, description="Only approved (or already exported) tasks.")

    @model_validator(mode="after")
    def _range(self) -> ExportFilters:
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise ValueError("created_from must be before created_to")
        return self


class DatasetExportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    filters: ExportFilters = Field(default_factory=ExportFilters)
    label_config_version: int | None = Field(
        default=None, ge=1, description="Export only annotations made under this label-config version."
    )


APPROVED = frozenset({TaskStatus.APPROVED, TaskStatus.EXPORTED})


def matches(task: Task, f: ExportFilters) -> bool:
    """Whether ``task`` passes the export's filters."""
    if f.status is not None and task.status not in f.status:
        return False
    if f.approved_only and task.status not in APPROVED:
        return False
    if f.tags is not None and not set(f.tags) & set(task.tags):
        return False
    if f.created_from is not None or f.created_to is not None:
        created = datetime.fromisoformat(task.created_at.replace("Z", "+00:00"))
        if f.created_from is not None and created < f.created_from:
            return False
        if f.created_to is not None and created >= f.created_to:
            return False
    return True


def exported(
    task: Task, annotations: list[Annotation], label_config_version: int | None = None
) -> Annotation | None:
    """The annotation ``task`` exports: the accepted one when the workflow accepted one (of the
    version asked, else none), otherwise its latest."""
    if task.accepted_annotation_id is None:
        return latest(annotations, label_config_version)
    accepted = next((a for a in annotations if a.annotation_id == task.accepted_annotation_id), None)
    if accepted is None or label_config_version not in (None, accepted.label_config_version):
        return None
    return accepted


def latest(annotations: list[Annotation], label_config_version: int | None = None) -> Annotation | None:
    """The annotation a task exports: its latest (greatest time-ordered id), of the version asked."""
    candidates = [
        a
        for a in annotations
        if label_config_version is None or a.label_config_version == label_config_version
    ]
    return max(candidates, key=lambda a: a.annotation_id, default=None)


@dataclass(frozen=True)
class ExportRecord:
    """One task as a converter sees it: the task, its exported annotation, its image size."""

    task: Task
    annotation: Annotation | None
    image_size: tuple[int, int] | None = None  # (width, height) in pixels, when known

    def image(self) -> S3Ref | None:
        """The task's image: the first S3 reference (image tasks have one media object)."""
        return next((ref for ref in self.task.data.values() if isinstance(ref, S3Ref)), None)

    def text(self) -> str | None:
        return next((ref.text for ref in self.task.data.values() if isinstance(ref, TextRef)), None)

    def results(self) -> list[object]:
        return list(self.annotation.results) if self.annotation else []


def unknown_class(labels: Iterable[str], known: Collection[str], control: str | None = None) -> str | None:
    """Why a record cannot be written when one of its ``labels`` is not a class the export
    knows (a class renamed or removed from the label config since it was labelled); else None."""
    missing = sorted({label for label in labels if label not in known})
    if not missing:
        return None
    where = f" of control {control!r}" if control else ""
    return f"label {missing[0]!r}{where} is not a class of the current label configuration" + (
        f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""
    )


@dataclass(frozen=True)
class ExportFailure:
    """A task the export's format cannot represent, and why (listed in the job's error)."""

    task_id: str
    reason: str


def image_stem(record: ExportRecord) -> str:
    """A file-name stem for the task's image that is unique in the export: the task id."""
    return record.task.task_id


def dataset_export_key(project_id: str, job_id: str, fmt: ExportFormat) -> str:
    return f"dataset-exports/{project_id}/{job_id}.{fmt.extension}"
