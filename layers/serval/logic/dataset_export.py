"""Dataset exports: a project's tasks and labels, converted and streamed to S3 by a job.

The worker reads the project's tasks with their annotations (two merged Queries, see
:mod:`serval.adapters.export_reader`), keeps the tasks that pass the filters, picks each
task's exported annotation (:func:`serval.domain.exports.exported`: the one its approval
accepted), and pipes the records
through the format's converter into a :class:`~serval.adapters.jobs.ResultWriter` (S3
multipart upload, parts of ``PART_BYTES``): memory stays flat however many tasks there are.

Image sizes (COCO, VOC, and Ground Truth boxes) come from the task's metadata
(``width``/``height``) or else from the image's header (one ranged GET). A task the format
cannot represent (no image size, no image, no inline text for CoNLL, a label that is no
class of the current label config for COCO, YOLO and Ground Truth) is counted in
``counts.failed`` and named in the job's ``error``; ``counts.done`` is the tasks written.

A project with more tasks than ``EXPORT_SHARD_TASKS`` fans out over the jobs queue instead
of running in one invocation: :mod:`serval.logic.export_fanout` gathers task-id ranges in
parallel and assembles their files with the same :func:`write_result`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from serval.adapters import export_reader, projects
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.exports import (
    DatasetExportCreate,
    ExportFailure,
    ExportFormat,
    ExportRecord,
    dataset_export_key,
    exported,
    groundtruth,
    images,
    imagesize,
    matches,
    tabular,
    text,
)
from serval.domain.jobs import Job, JobCounts, JobKind, JobTimedOut
from serval.domain.label_config import LabelConfig
from serval.domain.media import MediaType
from serval.domain.models import Task
from serval.errors import ValidationFailed
from serval.logic import jobs
from serval.settings import settings

PART_BYTES = job_store.DEFAULT_PART_BYTES
DEADLINE_MARGIN_S = 30.0
CHECK_EVERY = 200  # tasks between deadline checks
MAX_LISTED_FAILURES = 20  # task ids named in the job's error


def start(project_id: str, request: DatasetExportCreate, actor: Actor) -> Job:
    """Queue an export of a project's tasks and labels (404 for an unknown project)."""
    projects.get(project_id)
    job = job_store.new(
        project_id, JobKind.DATASET_EXPORT, request.model_dump(mode="json", exclude_none=True), actor.user_id
    )
    return jobs.submit(job, actor, "dataset.export")


@dataclass
class _Tally:
    done: int = 0
    failed: list[str] = field(default_factory=list)
    failures: int = 0

    def fail(self, task_id: str, reason: str) -> None:
        self.failures += 1
        if len(self.failed) < MAX_LISTED_FAILURES:
            self.failed.append(f"{task_id} ({reason})")

    def error(self) -> str | None:
        if not self.failures:
            return None
        more = f" and {self.failures - len(self.failed)} more" if self.failures > len(self.failed) else ""
        return f"{self.failures} tasks could not be exported: {', '.join(self.failed)}{more}"


def _metadata_size(task: Task) -> tuple[int, int] | None:
    w, h = task.metadata.get("width"), task.metadata.get("height")
    if isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool) and w > 0 and h > 0:
        return (w, h)
    return None


def image_size(record: ExportRecord) -> tuple[int, int] | None:
    """The image's pixel size: from the task's metadata, else from the file's header."""
    known = _metadata_size(record.task)
    if known is not None:
        return known
    ref = record.image()
    if ref is None:
        return None
    head = export_reader.read_head(ref.bucket, ref.key, imagesize.HEADER_BYTES, ref.version_id)
    found = imagesize.size(head)
    if found is None and len(head) == imagesize.HEADER_BYTES:  # a JPEG with a large EXIF block
        head = export_reader.read_head(ref.bucket, ref.key, imagesize.MAX_HEADER_BYTES, ref.version_id)
        found = imagesize.size(head)
    return found


def _needs_size(fmt: ExportFormat, record: ExportRecord) -> bool:
    if fmt.needs_image_size:
        return True
    return fmt is ExportFormat.GROUNDTRUTH and bool(images.boxes(record))


def prepare(fmt: ExportFormat, record: ExportRecord) -> tuple[ExportRecord | None, str | None]:
    """The record ready for ``fmt`` (with its image size when needed), or why it cannot be."""
    if fmt in (ExportFormat.COCO, ExportFormat.YOLO, ExportFormat.VOC) and (
        record.task.media_type is not MediaType.IMAGE or record.image() is None
    ):
        return None, "not an image task"
    if fmt is ExportFormat.CONLL and record.text() is None:
        return None, "no inline text"
    if _needs_size(fmt, record):
        size = image_size(record)
        if size is None:
            return None, "image size unknown"
        record = ExportRecord(record.task, record.annotation, size)
    return record, None


def encode(fmt: ExportFormat, records: Iterable[ExportRecord], config: LabelConfig) -> Iterator[bytes]:
    """The export file, as chunks of bytes."""
    match fmt:
        case ExportFormat.JSON:
            return tabular.json_chunks(records)
        case ExportFormat.JSONL:
            return tabular.jsonl_chunks(records)
        case ExportFormat.CSV:
            return tabular.csv_chunks(records)
        case ExportFormat.COCO:
            return images.coco_chunks(records, config)
        case ExportFormat.YOLO:
            return images.yolo_chunks(records, config)
        case ExportFormat.VOC:
            return images.voc_chunks(records)
        case ExportFormat.CONLL:
            return text.conll_chunks(records)
        case ExportFormat.GROUNDTRUTH:
            return groundtruth.manifest_chunks(records, config)


def label_check(fmt: ExportFormat, config: LabelConfig) -> Callable[[ExportRecord], str | None] | None:
    """The format's check of a record's labels against the classes it writes (None: a format
    that writes labels as they are)."""
    match fmt:
        case ExportFormat.COCO:
            return images.coco_check(config)
        case ExportFormat.YOLO:
            return images.yolo_check(config)
        case ExportFormat.GROUNDTRUTH:
            return groundtruth.manifest_check(config)
    return None


def request_of(job: Job) -> DatasetExportCreate:
    """The export's request, as validated when the job was created."""
    try:
        return DatasetExportCreate.model_validate(job.params)
    except ValidationError as exc:
        raise ValidationFailed(f"the export's parameters are invalid: {exc.errors()[:3]}") from exc


def outcomes(
    job: Job,
    request: DatasetExportCreate,
    time_left: Callable[[], float],
    lo: str = "",
    hi: str | None = None,
) -> Iterator[ExportRecord | ExportFailure]:
    """The job's tasks with ids ``lo <= id < hi`` that pass its filters, in task id order:
    each ready for its format, or the reason it cannot be."""
    seen = 0
    for task, found in export_reader.tasks_with_annotations(job.project_id, lo, hi):
        seen += 1
        if seen % CHECK_EVERY == 0 and time_left() < DEADLINE_MARGIN_S:
            raise JobTimedOut(f"the export stopped after {seen} tasks: it did not finish in time")
        if not matches(task, request.filters):
            continue
        record, problem = prepare(
            request.format, ExportRecord(task, exported(task, found, request.label_config_version))
        )
        yield record if record is not None else ExportFailure(task.task_id, problem or "cannot be exported")


def _tallied(
    items: Iterable[ExportRecord | ExportFailure],
    tally: _Tally,
    check: Callable[[ExportRecord], str | None] | None,
) -> Iterator[ExportRecord]:
    """The records of ``items`` that ``check`` passes; failures are counted (and the first
    ones named) in ``tally``."""
    for item in items:
        if isinstance(item, ExportFailure):
            tally.fail(item.task_id, item.reason)
            continue
        problem = check(item) if check else None
        if problem is not None:
            tally.fail(item.task.task_id, problem)
            continue
        tally.done += 1
        yield item


def write_result(
    job: Job, request: DatasetExportCreate, items: Iterable[ExportRecord | ExportFailure]
) -> jobs.RunResult:
    """Encode ``items`` in the export's format and stream them to the job's result object."""
    config = projects.get(job.project_id).label_config
    key = dataset_export_key(job.project_id, job.job_id, request.format)
    writer = job_store.ResultWriter(
        settings().EXPORT_BUCKET, key, request.format.content_type, part_size=PART_BYTES
    )
    tally = _Tally()
    try:
        records = _tallied(items, tally, label_check(request.format, config))
        for chunk in encode(request.format, records, config):
            if chunk:
                writer.write(chunk)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return jobs.RunResult(JobCounts(done=tally.done, failed=tally.failures), key, tally.error())


def run(claim: job_store.Claim, time_left: Callable[[], float]) -> jobs.RunResult:
    """Write the export of a claimed job to the exports bucket; returns its counts and key.

    A project larger than one shard (``EXPORT_SHARD_TASKS``) fans out instead: see
    :mod:`serval.logic.export_fanout` (raises JobFannedOut).
    """
    from serval.logic import export_fanout

    job = claim.job
    request = request_of(job)
    shards = export_fanout.plan(job)
    if shards > 1:
        export_fanout.fan_out(claim, shards)
    return write_result(job, request, outcomes(job, request, time_left))
