"""S3 objects to tasks, idempotently.

- A media object becomes one task whose id derives from (bucket, key, ETag): a conditional
  put in one transaction with its counter and audit record, so a redelivered event creates
  nothing new.
- A manifest becomes an Import claimed under a lease. Lines stream from S3; good lines become
  tasks written with BatchWriteItem in chunks of 25 (ids derive from (bucket, key, ETag, line),
  so they are new by construction on a first attempt); lines carrying an ``external_id`` are
  written conditionally instead, so re-sending them in another manifest never duplicates.
  Every few hundred tasks a checkpoint records the committed line together with the counters,
  in one transaction. A resumed attempt skips committed lines and checks the rest for items the
  crashed attempt wrote. Broken lines go to an error report; they never stop the good ones.
- Close to the Lambda deadline the import checkpoints, releases its lease and asks to be
  continued by a fresh invocation, so no import is too large to finish.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from serval import ids, keys
from serval.adapters import audit, dynamo, imports, mapping, projects, queues, storage, tasks
from serval.domain import manifest, media
from serval.domain.actor import Actor
from serval.domain.lifecycle import INITIAL
from serval.domain.models import (
    ImportSource,
    ImportStatus,
    LineError,
    Project,
    ProjectStatus,
    S3Ref,
    Task,
    TaskCreate,
    TaskSource,
    new_task,
    utcnow,
)
from serval.errors import ItemTooLarge, NotFound, PoisonRecord
from serval.settings import settings

CHECKPOINT_EVERY = 500  # tasks between checkpoints (20 BatchWriteItem calls)
DEADLINE_MARGIN_S = 60.0


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    principal: str | None

    @property
    def identity(self) -> str:
        return self.etag or self.version_id or ""


@dataclass
class Outcome:
    kind: str  # task_created | duplicate | import_completed | ignored | continue
    detail: dict[str, Any] = field(default_factory=dict)


class ImportContinues(Exception):
    """The import checkpointed before the deadline; a new invocation must continue it."""


def parse_event_body(body: str) -> list[S3Object]:
    """The S3 objects of one SQS message body (an S3 event notification)."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PoisonRecord(f"the message body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise PoisonRecord("the message body is not an S3 event")
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise PoisonRecord("the message body has no Records list")
    objects = []
    for record in records:
        try:
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = record["s3"]
            obj = s3["object"]
            objects.append(
                S3Object(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
                    version_id=obj.get("versionId") or None,
                    size=int(obj.get("size", 0)),
                    principal=(record.get("userIdentity") or {}).get("principalId"),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PoisonRecord(f"malformed S3 event record: {exc!r}") from exc
    return objects


def _project_of(obj: S3Object) -> Project:
    parts = obj.key.split("/")
    if len(parts) < 3 or parts[0] != "projects" or not parts[1] or not parts[-1]:
        raise PoisonRecord(f"{obj.key!r} is not under projects/<project_id>/")
    if obj.bucket != settings().DATA_BUCKET:
        raise PoisonRecord(f"bucket {obj.bucket!r} is not the data bucket")
    try:
        project = projects.get(parts[1])
    except NotFound as exc:
        raise PoisonRecord(f"project {parts[1]!r} does not exist (object {obj.key!r})") from exc
    if project.status is not ProjectStatus.ACTIVE:
        raise PoisonRecord(f"project {project.project_id} is archived; {obj.key!r} was not imported")
    return project


def _head(obj: S3Object) -> storage.ObjectInfo:
    try:
        return storage.head(obj.bucket, obj.key, obj.version_id)
    except NotFound as exc:
        raise PoisonRecord(f"{obj.key!r} no longer exists") from exc


def _uploader(info: storage.ObjectInfo, obj: S3Object, request_id: str | None) -> Actor:
    """Who an object's tasks are attributed to: the user the API signed its upload for (the
    object's signed metadata), else the pipeline on behalf of the principal that wrote it."""
    return Actor.uploader(info.metadata, request_id) or Actor.system(
        "ingest", request_id=request_id, on_behalf_of=obj.principal
    )


def ingest_object(obj: S3Object, time_left: Callable[[], float], request_id: str | None = None) -> Outcome:
    name = posixpath.basename(obj.key)
    if name.startswith(".") or obj.key.endswith("/"):
        return Outcome("ignored", {"key": obj.key, "reason": "hidden file or folder marker"})
    project = _project_of(obj)
    if media.is_manifest(obj.key):
        return ingest_manifest(project, obj, time_left, request_id)
    return ingest_media(project, obj, request_id)


# ---- media objects -------------------------------------------------------------------------


def ingest_media(project: Project, obj: S3Object, request_id: str | None) -> Outcome:
    info = _head(obj)
    media_type = media.detect(obj.key)
    content_type = None
    if media_type is None:
        content_type = info.content_type
        media_type = media.detect(obj.key, content_type)
    if media_type is None:
        raise PoisonRecord(f"{obj.key!r} is neither a supported media file nor a manifest (.jsonl, .csv)")
    if media_type not in project.media_types:
        allowed = [m.value for m in project.media_types]
        raise PoisonRecord(f"{obj.key!r} is {media_type.value}; project {project.project_id} takes {allowed}")
    now = utcnow()
    task = Task(
        task_id=ids.stable_id("t", obj.bucket, obj.key, obj.identity),
        project_id=project.project_id,
        data={
            media.DATA_KEY[media_type]: S3Ref(
                bucket=obj.bucket,
                key=obj.key,
                version_id=obj.version_id,
                media_type=media_type,
                content_type=content_type,
                size=obj.size,
            )
        },
        media_type=media_type,
        status=INITIAL,
        source=TaskSource(bucket=obj.bucket, key=obj.key, etag=obj.etag, version_id=obj.version_id),
        created_at=now,
        updated_at=now,
    )
    tx = dynamo.Tx()
    tx.put(dynamo.tasks().TaskItem(**mapping.task_to_attrs(task)), condition="attribute_not_exists(PK)")
    dynamo.add_counter(tx, project.project_id, task.task_id, {task.status.value: 1})
    audit.record(
        tx,
        _uploader(info, obj, request_id),
        "task.create",
        "task",
        task.task_id,
        project.project_id,
        after={"source": task.source.model_dump(mode="json", exclude_none=True) if task.source else None},
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled:
        return Outcome("duplicate", {"task_id": task.task_id})
    return Outcome("task_created", {"task_id": task.task_id, "project_id": project.project_id})


# ---- manifests -----------------------------------------------------------------------------


def _task_from_line(project: Project, obj: S3Object, import_id: str, line: int, spec: TaskCreate) -> Task:
    media_type = manifest.primary_media(spec)
    if media_type not in project.media_types:
        raise ValueError(
            f"the line is {media_type.value}; the project takes {[m.value for m in project.media_types]}"
        )
    task_id = ids.task_id(project.project_id, spec.external_id, (obj.bucket, obj.key, obj.identity, line))
    source = TaskSource(bucket=obj.bucket, key=obj.key, etag=obj.etag, version_id=obj.version_id, line=line)
    task = new_task(
        spec,
        task_id=task_id,
        project_id=project.project_id,
        media_type=media_type,
        import_id=import_id,
        source=source,
    )
    try:
        tasks.check_size(task)  # decided by the line alone, so a resumed import decides it again
    except ItemTooLarge as exc:
        raise ValueError(exc.message) from exc
    return task


@dataclass
class _Writer:
    """Buffers a manifest's tasks and commits them with checkpoints."""

    claim: imports.Claim
    lease_seconds: int
    positional: list[Task] = field(default_factory=list)
    conditional: list[Task] = field(default_factory=list)
    last_line: int = 0
    created: int = 0
    duplicates: int = 0
    requests: int = 0

    def add(self, line: int, task: Task | None) -> None:
        self.last_line = line
        if task is not None:
            (self.conditional if task.external_id else self.positional).append(task)
        if len(self.positional) + len(self.conditional) >= CHECKPOINT_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.last_line <= self.claim.lines_committed:
            return
        project_id = self.claim.record.project_id
        fresh = self.positional
        recovered = 0
        if self.claim.resumed and fresh:
            # a crashed attempt may have written some of these after its last checkpoint;
            # they were never counted, so count them now without writing them again
            existing = tasks.existing_ids(project_id, [t.task_id for t in fresh])
            recovered = len(existing)
            fresh = [t for t in fresh if t.task_id not in existing]
        written = tasks.batch_put(fresh)
        self.requests += written.requests
        conditional = tasks.put_new(project_id, self.conditional, self.claim.record.import_id)
        self.requests += conditional.requests + 1
        positional = len(fresh) - len(written.refused) + recovered
        created = positional + len(conditional.created)
        self.claim = imports.checkpoint(
            self.claim,
            lines_committed=self.last_line,
            created=created,
            duplicates=len(conditional.duplicates),
            counter_deltas={INITIAL.value: positional},
            lease_seconds=self.lease_seconds,
            refused=[_refused_line(r) for r in (*written.refused, *conditional.refused)],
        )
        self.created += created
        self.duplicates += len(conditional.duplicates)
        self.positional, self.conditional = [], []


def _refused_line(refused: tasks.Refused) -> LineError:
    source = refused.task.source
    return LineError(line=source.line if source and source.line else 0, error=refused.reason[:1000], raw="")


def ingest_manifest(
    project: Project, obj: S3Object, time_left: Callable[[], float], request_id: str | None
) -> Outcome:
    cfg = settings()
    actor = _uploader(_head(obj), obj, request_id)
    import_id = ids.stable_id("imp", obj.bucket, obj.key, obj.identity)
    lease_seconds = int(max(time_left(), 60.0)) + 60
    claim = imports.claim(
        project.project_id, import_id, ImportSource.MANIFEST, obj.bucket, obj.key, actor, lease_seconds
    )
    if claim is None:
        return Outcome("duplicate", {"import_id": import_id})
    ctx = manifest.ManifestContext(cfg.DATA_BUCKET, f"projects/{project.project_id}/", obj.key)
    writer = _Writer(claim, lease_seconds)
    lines_total = 0
    with tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+b") as errors:
        error_count = 0
        try:
            parsed: Iterator[manifest.ParsedLine] = manifest.parse(
                ctx, manifest.decode_lines(storage.iter_byte_lines(obj.bucket, obj.key, obj.version_id))
            )
            for line, parsed_line in parsed:
                lines_total += 1
                task = None
                result = parsed_line
                if isinstance(result, TaskCreate):
                    try:
                        task = _task_from_line(project, obj, import_id, line, result)
                    except ValueError as exc:
                        result = LineError(line=line, error=str(exc), raw="")
                if isinstance(result, LineError):
                    error_count += 1
                    errors.write(result.model_dump_json().encode() + b"\n")
                if line > writer.claim.lines_committed:
                    writer.add(line, task)
                if time_left() < DEADLINE_MARGIN_S:
                    writer.flush()
                    imports.release(writer.claim)
                    raise ImportContinues(import_id)
            writer.flush()
        except PoisonRecord as exc:
            imports.complete(writer.claim, lines_total, error_count + 1, None, ImportStatus.FAILED, actor)
            raise PoisonRecord(f"import {import_id} failed: {exc.message}") from exc
        # the lines DynamoDB refused, over every attempt (the import item keeps the first few)
        error_count += writer.claim.refused
        for refused in writer.claim.refused_lines:
            errors.write(refused.model_dump_json().encode() + b"\n")
        report_key = None
        if error_count:
            report_key = keys.import_error_report_key(project.project_id, import_id)
            errors.seek(0)
            storage.upload(errors, cfg.DATA_BUCKET, report_key, "application/x-ndjson")
    status = ImportStatus.COMPLETED_WITH_ERRORS if error_count else ImportStatus.COMPLETED
    record = imports.complete(writer.claim, lines_total, error_count, report_key, status, actor)
    return Outcome(
        "import_completed",
        {
            "import_id": import_id,
            "tasks_created": record.tasks_created,
            "errors": error_count,
            "requests": writer.requests,
            "duplicates": record.duplicates,
        },
    )


# ---- one SQS message -----------------------------------------------------------------------


def process_message(
    body: str, message_id: str, time_left: Callable[[], float], request_id: str | None = None
) -> list[Outcome]:
    """Ingest every object of one SQS message.

    A record that can never succeed goes to the DLQ with its reason and is not retried; an
    import that reached the deadline is re-enqueued to continue; anything else raises, so the
    message is retried (and redriven to the DLQ by SQS after too many receives).
    """
    cfg = settings()
    outcomes: list[Outcome] = []
    try:
        for obj in parse_event_body(body):
            try:
                outcomes.append(ingest_object(obj, time_left, request_id))
            except ImportContinues:
                queues.send(cfg.INGEST_QUEUE_URL, _single_record_body(obj), {"continuation-of": message_id})
                outcomes.append(Outcome("continue", {"key": obj.key}))
    except PoisonRecord as exc:
        queues.send(
            cfg.INGEST_DLQ_URL,
            body,
            {"error-code": exc.code, "error-reason": exc.message[:250], "source-message-id": message_id},
        )
        outcomes.append(Outcome("poison", {"reason": exc.message}))
    return outcomes


def _single_record_body(obj: S3Object) -> str:
    """An S3 event for one object, to continue its import in a new invocation."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Continue",
                    "userIdentity": {"principalId": obj.principal or ""},
                    "s3": {
                        "bucket": {"name": obj.bucket},
                        "object": {
                            "key": quote_plus(obj.key, safe="/"),
                            "eTag": obj.etag,
                            "versionId": obj.version_id,
                            "size": obj.size,
                        },
                    },
                }
            ]
        }
    )
