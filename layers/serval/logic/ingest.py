"""S3 objects to tasks, idempotently.

- A media object becomes one task whose id derives from (bucket, key, ETag): a conditional
  put in one transaction with its counter and audit record, so a redelivered event creates
  nothing new.
- A manifest becomes an Import, read in byte ranges (:mod:`serval.domain.byte_ranges`): one
  range when it is at most ``INGEST_RANGE_BYTES``, imported by the invocation that got the S3
  event; else one message per range on the ranges queue, each imported by an invocation of its
  own through a ranged GET. Every range runs the same code:
  - good lines become tasks written with BatchWriteItem in chunks of 25 (ids derive from
    (bucket, key, ETag, the line's byte offset), so they are new by construction on a first
    attempt, and the same however the manifest was split); lines carrying an ``external_id``
    are written conditionally instead, so re-sending them in another manifest never duplicates;
  - every few hundred tasks a checkpoint records the range's committed offset together with
    the counters, in one transaction; a resumed attempt skips committed lines and checks the
    rest for items the crashed attempt wrote;
  - broken lines go to an error report; they never stop the good ones. Each range numbers its
    lines from 1; the import's report numbers them across the manifest once every range has
    counted its lines;
  - close to the Lambda deadline a range checkpoints, releases its lease and continues in a
    new ranges-queue message, so no import is too large to finish.
- The range that finds every range done finishes the import, once
  (:mod:`serval.adapters.import_ranges`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from serval import ids, keys
from serval.adapters import audit, dynamo, import_ranges, mapping, projects, queues, storage, tasks
from serval.domain import byte_ranges, manifest, media
from serval.domain.actor import Actor
from serval.domain.byte_ranges import ByteRange, RangeMessage
from serval.domain.lifecycle import INITIAL
from serval.domain.manifest import RawLine
from serval.domain.models import (
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


class OutcomeKind(StrEnum):
    """What became of an S3 object or a manifest range."""

    TASK_CREATED = "task_created"
    DUPLICATE = "duplicate"  # a redelivery: created before
    IMPORT_SPLIT = "import_split"  # a large manifest, queued as byte ranges
    RANGE_DONE = "range_done"
    IMPORT_COMPLETED = "import_completed"
    IMPORT_CLOSED = "import_closed"
    IGNORED = "ignored"  # a hidden file or a folder marker
    CONTINUE = "continue"  # checkpointed before the deadline; a new message continues it
    POISON = "poison"


@dataclass
class Outcome:
    kind: OutcomeKind
    detail: dict[str, Any] = field(default_factory=dict)


class RangeContinues(Exception):
    """A range checkpointed before the deadline; a new invocation must continue it."""

    def __init__(self, message: RangeMessage) -> None:
        super().__init__(f"range {message.index} of import {message.import_id} continues")
        self.message = message


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
        return Outcome(OutcomeKind.IGNORED, {"key": obj.key, "reason": "hidden file or folder marker"})
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
        return Outcome(OutcomeKind.DUPLICATE, {"task_id": task.task_id})
    return Outcome(OutcomeKind.TASK_CREATED, {"task_id": task.task_id, "project_id": project.project_id})


# ---- manifests -----------------------------------------------------------------------------


def ingest_manifest(
    project: Project, obj: S3Object, time_left: Callable[[], float], request_id: str | None
) -> Outcome:
    """Open the manifest's import. One range: import it here. More: send one message per range
    to the ranges queue (:func:`process_range_message` imports each one)."""
    cfg = settings()
    info = _head(obj)
    actor = _uploader(info, obj, request_id)
    import_id = ids.stable_id("imp", obj.bucket, obj.key, obj.identity)
    range_bytes = cfg.INGEST_RANGE_BYTES
    lease_seconds = _lease_seconds(time_left)
    known: import_ranges.ImportState | None = None
    if info.size > range_bytes and manifest.is_csv(obj.key):
        # a CSV is read once to find where its records start: not for a redelivered event
        known = _known_state(project.project_id, import_id)
        if known is not None and (known.finished or known.ranges_queued):
            return Outcome(OutcomeKind.DUPLICATE, {"import_id": import_id})
        if known is not None and known.range_bytes:
            range_bytes = known.range_bytes
    plan = _plan(obj, info.size, range_bytes, time_left)
    single = plan.ranges[0] if len(plan.ranges) == 1 else None
    opened = import_ranges.open_import(
        project.project_id,
        import_id,
        obj.bucket,
        obj.key,
        actor,
        len(plan.ranges),
        range_bytes,
        single,
        lease_seconds,
    )
    if not opened.created:
        known = import_ranges.state(project.project_id, import_id)
        if known.finished or known.ranges_queued:
            return Outcome(OutcomeKind.DUPLICATE, {"import_id": import_id})
        if known.range_bytes and known.range_bytes != range_bytes:  # planned before a config change
            plan = _plan(obj, info.size, known.range_bytes, time_left)
            single = plan.ranges[0] if len(plan.ranges) == 1 else None
    messages = [_message(project, obj, import_id, info.size, plan, r) for r in plan.ranges]
    if single is None:
        bodies = [m.model_dump_json(exclude_none=True) for m in messages]
        queues.send_batch(cfg.INGEST_RANGES_QUEUE_URL, bodies, {"import-id": import_id})
        import_ranges.mark_queued(project.project_id, import_id)
        return Outcome(
            OutcomeKind.IMPORT_SPLIT, {"import_id": import_id, "ranges": len(messages), "bytes": info.size}
        )
    with _failing(messages[0], request_id):
        claim = opened.claim or import_ranges.claim(project.project_id, import_id, single, lease_seconds)
        if claim is None:  # done by an earlier delivery (which finished the import with it)
            return Outcome(OutcomeKind.DUPLICATE, {"import_id": import_id})
        return _import_range(project, messages[0], claim, time_left, request_id, actor)


@contextlib.contextmanager
def _failing(message: RangeMessage, request_id: str | None) -> Iterator[None]:
    """A range whose object can no longer be read fails its import (once, audited): the
    PoisonRecord goes on, naming the import, to be sent to the DLQ with its reason."""
    try:
        yield
    except PoisonRecord as exc:
        obj = _object_of(message)
        final = import_ranges.Finish(
            ImportStatus.FAILED, None, _completion_actor(obj, request_id), obj.bucket, obj.key
        )
        with contextlib.suppress(NotFound):
            import_ranges.fail(message.project_id, message.import_id, final, exc.message)
        where = f" in range {message.index}" if message.count > 1 else ""
        raise PoisonRecord(f"import {message.import_id} failed{where}: {exc.message}") from exc


def _lease_seconds(time_left: Callable[[], float]) -> int:
    return int(max(time_left(), 60.0)) + 60


def _known_state(project_id: str, import_id: str) -> import_ranges.ImportState | None:
    try:
        return import_ranges.state(project_id, import_id)
    except NotFound:
        return None


@dataclass(frozen=True)
class _Plan:
    ranges: list[ByteRange]
    header_end: int = 0  # a split CSV's header record is [0, header_end)


def _plan(obj: S3Object, size: int, range_bytes: int, time_left: Callable[[], float]) -> _Plan:
    """The manifest's byte ranges: one when it fits in one; a JSONL split at equal sizes; a CSV
    split where records start, found in one pass over it (see serval.domain.byte_ranges)."""
    if size <= range_bytes:
        return _Plan([ByteRange(0, 0, size)])
    if not manifest.is_csv(obj.key):
        return _Plan(byte_ranges.nominal(size, range_bytes))
    lines = storage.iter_range_lines(
        obj.bucket, obj.key, version_id=obj.version_id, etag=obj.etag, start=0, end=size, size=size
    )
    header_end: list[int] = []

    def starts() -> Iterator[int]:
        for n, offset in enumerate(manifest.csv_record_starts(manifest.decode_lines(lines))):
            if n == 0:
                header_end.append(offset)
            elif n % 10_000 == 0 and time_left() < DEADLINE_MARGIN_S:
                raise PoisonRecord(
                    f"{obj.key!r} is too large to find its CSV records within one invocation; "
                    "split it into smaller manifests, or upload it as JSON Lines"
                )
            yield offset

    try:
        ranges = byte_ranges.at_boundaries(size, range_bytes, starts())
    except NotFound as exc:
        raise PoisonRecord(f"{obj.key!r} no longer exists") from exc
    return _Plan(ranges, header_end[0] if header_end and len(ranges) > 1 else 0)


def _message(
    project: Project, obj: S3Object, import_id: str, size: int, plan: _Plan, r: ByteRange
) -> RangeMessage:
    return RangeMessage(
        project_id=project.project_id,
        import_id=import_id,
        bucket=obj.bucket,
        key=obj.key,
        etag=obj.etag,
        version_id=obj.version_id,
        principal=obj.principal,
        size=size,
        index=r.index,
        count=len(plan.ranges),
        start=r.start,
        end=r.end,
        header_end=plan.header_end,
    )


def _object_of(message: RangeMessage) -> S3Object:
    return S3Object(
        bucket=message.bucket,
        key=message.key,
        etag=message.etag,
        version_id=message.version_id,
        size=message.size,
        principal=message.principal,
    )


def _task_from_line(project: Project, message: RangeMessage, offset: int, spec: TaskCreate) -> Task:
    media_type = manifest.primary_media(spec)
    if media_type not in project.media_types:
        raise ValueError(
            f"the line is {media_type.value}; the project takes {[m.value for m in project.media_types]}"
        )
    obj = _object_of(message)
    # the line's byte offset names it: the same task however the manifest was split
    task_id = ids.task_id(
        project.project_id, spec.external_id, (obj.bucket, obj.key, obj.identity, "offset", offset)
    )
    source = TaskSource(
        bucket=obj.bucket, key=obj.key, etag=obj.etag, version_id=obj.version_id, offset=offset
    )
    task = new_task(
        spec,
        task_id=task_id,
        project_id=project.project_id,
        media_type=media_type,
        import_id=message.import_id,
        source=source,
    )
    try:
        tasks.check_size(task)  # decided by the line alone, so a resumed range decides it again
    except ItemTooLarge as exc:
        raise ValueError(exc.message) from exc
    return task


@dataclass
class _Writer:
    """Buffers a range's tasks and commits them with checkpoints (at line offsets)."""

    claim: import_ranges.RangeClaim
    lease_seconds: int
    positional: list[Task] = field(default_factory=list)
    conditional: list[Task] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)  # buffered task id -> its line in the range
    last_offset: int = -1
    requests: int = 0

    def add(self, offset: int, number: int, task: Task | None) -> None:
        self.last_offset = offset
        if task is not None:
            (self.conditional if task.external_id else self.positional).append(task)
            self.numbers[task.task_id] = number
        if len(self.positional) + len(self.conditional) >= CHECKPOINT_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.last_offset <= self.claim.committed:
            return
        project_id = self.claim.project_id
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
        seed = f"{self.claim.import_id}#{self.claim.range.index}"
        conditional = tasks.put_new(project_id, self.conditional, seed)
        self.requests += conditional.requests + 1
        positional = len(fresh) - len(written.refused) + recovered
        self.claim = import_ranges.checkpoint(
            self.claim,
            committed=self.last_offset,
            created=positional + len(conditional.created),
            duplicates=len(conditional.duplicates),
            counter_deltas={INITIAL.value: positional},
            lease_seconds=self.lease_seconds,
            refused=[self._refused_line(r) for r in (*written.refused, *conditional.refused)],
        )
        self.positional, self.conditional, self.numbers = [], [], {}

    def _refused_line(self, refused: tasks.Refused) -> LineError:
        source = refused.task.source
        return LineError(
            line=self.numbers.get(refused.task.task_id, 0),
            offset=source.offset if source else None,
            error=refused.reason[:1000],
            raw="",
        )


class _Counted:
    """The lines of a range, counted as they are read (blank ones too: line numbers count them)."""

    def __init__(self, lines: Iterator[RawLine]) -> None:
        self.lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[RawLine]:
        for line in self.lines:
            self.count += 1
            yield line


def _parse_range(
    project: Project,
    message: RangeMessage,
    writer: _Writer,
    lines: Iterable[RawLine],
    header_lines: int,
    errors: IO[bytes],
    time_left: Callable[[], float],
) -> tuple[int, int]:
    """Parse a range's lines (after ``header_lines`` of a CSV header read again), hand their
    tasks to ``writer`` and spool their errors, numbered within the range: (lines parsed, errors)."""
    ctx = manifest.ManifestContext(
        settings().DATA_BUCKET, keys.project_data_prefix(project.project_id), message.key
    )
    parsed_lines, error_count = 0, 0
    for parsed in manifest.parse(ctx, manifest.decode_lines(lines)):
        number = parsed.number - header_lines
        if number < 1:
            continue  # the header's own error: the range that holds it reports it
        parsed_lines += 1
        task, result = None, parsed.result
        if isinstance(result, TaskCreate):
            try:
                task = _task_from_line(project, message, parsed.offset, result)
            except ValueError as exc:
                result = LineError(line=number, offset=parsed.offset, error=str(exc), raw="")
        if isinstance(result, LineError):
            error_count += 1
            errors.write(result.model_copy(update={"line": number}).model_dump_json().encode() + b"\n")
        if parsed.offset > writer.claim.committed:
            writer.add(parsed.offset, number, task)
        if time_left() < DEADLINE_MARGIN_S:
            writer.flush()
            import_ranges.release(writer.claim)
            raise RangeContinues(message)
    writer.flush()
    return parsed_lines, error_count


def _import_range(
    project: Project,
    message: RangeMessage,
    claim: import_ranges.RangeClaim,
    time_left: Callable[[], float],
    request_id: str | None,
    actor: Actor | None = None,
) -> Outcome:
    """Import one claimed range: parse its lines, write their tasks with checkpoints, report its
    broken lines, complete it; the last range of the import finishes it."""
    writer = _Writer(claim, _lease_seconds(time_left))
    obj = _object_of(message)

    def read(start: int, end: int) -> Iterator[RawLine]:
        return storage.iter_range_lines(
            obj.bucket, obj.key, version_id=obj.version_id, etag=obj.etag, start=start, end=end, size=obj.size
        )

    owned = _Counted(read(message.start, message.end))
    header: list[RawLine] = []
    if message.header_end and message.start > 0:  # a later range of a CSV: its header first
        header = list(read(0, message.header_end))
    with tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+b") as errors:
        try:
            parsed_lines, error_count = _parse_range(
                project, message, writer, itertools.chain(header, owned), len(header), errors, time_left
            )
            if message.count > 1:
                for _ in owned:  # lines the parser left unread still count for later line numbers
                    pass
        except NotFound as exc:
            raise PoisonRecord(f"{message.key!r} no longer exists") from exc
        refused = writer.claim.refused_lines
        error_total = error_count + writer.claim.refused
        part_key = None
        if error_total:
            part_key = (
                keys.import_error_report_key(project.project_id, message.import_id)
                if message.count == 1
                else keys.import_range_errors_key(project.project_id, message.import_id, message.index)
            )
            errors.seek(0)
            _write_errors(part_key, _by_offset(errors, refused))
    done = writer.claim
    detail = {
        "import_id": message.import_id,
        "range": message.index,
        "range_tasks_created": done.tasks_created,
        "requests": writer.requests,
    }
    final = None
    if message.count == 1:
        status = ImportStatus.COMPLETED_WITH_ERRORS if error_total else ImportStatus.COMPLETED
        final = import_ranges.Finish(
            status, part_key, actor or _completion_actor(obj, request_id), obj.bucket, obj.key
        )
    try:
        import_ranges.complete(
            done,
            lines=owned.count,
            parsed=parsed_lines,
            errors=error_total,
            error_part_key=part_key,
            finish=final,
        )
    except import_ranges.ImportClosed:
        return Outcome(OutcomeKind.IMPORT_CLOSED, detail)
    if final is not None:
        counts = {"tasks_created": done.tasks_created, "errors": error_total, "duplicates": done.duplicates}
        return Outcome(OutcomeKind.IMPORT_COMPLETED, {**detail, **counts})
    return _finish_if_done(message, request_id, detail) or Outcome(OutcomeKind.RANGE_DONE, detail)


def _by_offset(errors: IO[bytes], refused: Sequence[LineError]) -> Iterator[LineError]:
    """The range's broken lines in file order: parse errors (spooled in order), then merged with
    the lines DynamoDB refused (kept on the range, over every attempt)."""
    spooled = (LineError.model_validate_json(line) for line in errors)
    return heapq.merge(spooled, sorted(refused, key=_offset_of), key=_offset_of)


def _offset_of(error: LineError) -> int:
    return error.offset if error.offset is not None else -1


def _write_errors(key: str, lines: Iterable[LineError]) -> None:
    with tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+b") as out:
        for error in lines:
            out.write(error.model_dump_json().encode() + b"\n")
        out.seek(0)
        storage.upload(out, settings().DATA_BUCKET, key, "application/x-ndjson")


def _completion_actor(obj: S3Object, request_id: str | None) -> Actor:
    """Who the import's completion is attributed to: its uploader (from the object's signed
    metadata), else the pipeline on behalf of the principal that wrote it."""
    try:
        return _uploader(_head(obj), obj, request_id)
    except PoisonRecord:  # the object is gone: the pipeline closes the import
        return Actor.system("ingest", request_id=request_id, on_behalf_of=obj.principal)


def _finish_if_done(
    message: RangeMessage, request_id: str | None, detail: dict[str, Any] | None = None
) -> Outcome | None:
    """Finish the import when every range is done (whichever range sees it first; the import's
    conditional status change lets exactly one finish it): gather the ranges' broken lines into
    the error report, numbered across the whole manifest."""
    project_id, import_id = message.project_id, message.import_id
    known = import_ranges.state(project_id, import_id)
    if known.finished or not known.all_ranges_done:
        return None
    records = sorted(import_ranges.ranges(project_id, import_id), key=lambda r: r.index)
    if len(records) != known.ranges_total or not all(r.done for r in records):
        return None
    report_key = None
    if known.errors:
        first = byte_ranges.first_lines([r.lines for r in records])
        report_key = keys.import_error_report_key(project_id, import_id)
        _write_errors(report_key, _numbered(records, first))
    obj = _object_of(message)
    status = ImportStatus.COMPLETED_WITH_ERRORS if known.errors else ImportStatus.COMPLETED
    final = import_ranges.Finish(status, report_key, _completion_actor(obj, request_id), obj.bucket, obj.key)
    if not import_ranges.finish(project_id, import_id, final, known):
        return None
    counts = {"tasks_created": known.tasks_created, "errors": known.errors, "duplicates": known.duplicates}
    return Outcome(OutcomeKind.IMPORT_COMPLETED, {**(detail or {"import_id": import_id}), **counts})


def _numbered(records: Sequence[import_ranges.RangeRecord], first: Sequence[int]) -> Iterator[LineError]:
    """Every range's broken lines, in file order, their numbers made the manifest's."""
    bucket = settings().DATA_BUCKET
    for record in records:
        if not record.error_part_key:
            continue
        for raw in storage.iter_byte_lines(bucket, record.error_part_key):
            error = LineError.model_validate_json(raw)
            yield error.model_copy(update={"line": first[record.index] + error.line - 1})


# ---- one SQS message -----------------------------------------------------------------------


def process_message(
    body: str, message_id: str, time_left: Callable[[], float], request_id: str | None = None
) -> list[Outcome]:
    """Ingest every object of one SQS message (an S3 event notification).

    A record that can never succeed goes to the DLQ with its reason and is not retried; a
    one-range import that reached the deadline continues as a range message; anything else
    raises, so the message is retried (and redriven to the DLQ by SQS after too many receives).
    """
    cfg = settings()
    outcomes: list[Outcome] = []
    try:
        for obj in parse_event_body(body):
            try:
                outcomes.append(ingest_object(obj, time_left, request_id))
            except RangeContinues as more:
                _continue(more.message, message_id)
                outcomes.append(
                    Outcome(OutcomeKind.CONTINUE, {"key": obj.key, "import_id": more.message.import_id})
                )
    except PoisonRecord as exc:
        _to_dlq(cfg.INGEST_DLQ_URL, body, exc, message_id)
        outcomes.append(Outcome(OutcomeKind.POISON, {"reason": exc.message}))
    return outcomes


def process_range_message(
    body: str, message_id: str, time_left: Callable[[], float], request_id: str | None = None
) -> Outcome:
    """Import one byte range of a manifest (a message of the ranges queue).

    A redelivered range creates nothing twice; a range near the deadline checkpoints and
    continues in a new message; one whose object can no longer be read fails its import (once)
    and goes to the ranges DLQ with the reason. Anything else raises: the message is retried.
    """
    cfg = settings()
    try:
        message = RangeMessage.model_validate_json(body)
    except ValidationError as exc:
        poison = PoisonRecord(f"the message is not an ingest range: {manifest.explain(exc)}")
        _to_dlq(cfg.INGEST_RANGES_DLQ_URL, body, poison, message_id)
        return Outcome(OutcomeKind.POISON, {"reason": poison.message})
    try:
        with _failing(message, request_id):
            project = _project_of(_object_of(message))
            claim = import_ranges.claim(
                message.project_id, message.import_id, message.byte_range, _lease_seconds(time_left)
            )
            if claim is None:  # done before (a redelivery), or the import is closed
                detail = {"import_id": message.import_id, "range": message.index}
                return _finish_if_done(message, request_id, detail) or Outcome(OutcomeKind.DUPLICATE, detail)
            return _import_range(project, message, claim, time_left, request_id)
    except RangeContinues as more:
        _continue(more.message, message_id)
        return Outcome(OutcomeKind.CONTINUE, {"import_id": message.import_id, "range": message.index})
    except PoisonRecord as exc:
        _to_dlq(cfg.INGEST_RANGES_DLQ_URL, body, exc, message_id)
        return Outcome(OutcomeKind.POISON, {"reason": exc.message, "import_id": message.import_id})


def _continue(message: RangeMessage, source_message_id: str) -> None:
    body = message.model_dump_json(exclude_none=True)
    queues.send(settings().INGEST_RANGES_QUEUE_URL, body, {"continuation-of": source_message_id})


def _to_dlq(queue_url: str, body: str, exc: PoisonRecord, message_id: str) -> None:
    attributes = {"error-code": exc.code, "error-reason": exc.message[:250], "source-message-id": message_id}
    queues.send(queue_url, body, attributes)
