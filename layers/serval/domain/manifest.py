"""Manifest parsing: JSONL and CSV lines to tasks, each broken line to a LineError.

Accepted JSONL line shapes (one JSON object per line):
- Serval / Label Studio style: ``{"data": {"image": "s3://b/k.png", "text": "..."}, "tags": [...],
  "priority": 3, "metadata": {...}, "external_id": "...", "predictions": [...]}``
- Ground Truth style: ``{"source-ref": "s3://b/k.png", ...}`` or ``{"source": "inline text", ...}``;
  other top-level keys become metadata.

CSV: a header row; columns named like data keys (``image``, ``audio``, ``video``, ``document``,
``text``, ``source-ref``, ``source``) become data; ``tags`` (separated by ``;`` or ``|``),
``priority`` and ``external_id`` are task fields; every other column becomes metadata.

Whether a data value is a reference or inline text is decided by the line, never guessed
from the value's ending:
- ``s3://bucket/key`` is a reference, in any field;
- in a reference field (``image``, ``audio``, ``video``, ``document``, ``source-ref``, ``url``)
  any other value is a key relative to the project's prefix ``projects/<id>/`` (so a folder
  copied there keeps working: ``images/a.png`` is ``projects/<id>/images/a.png``); its media
  type is its extension's, else the field's (``source-ref`` and ``url`` need an extension);
- in every other field (``text``, ``source``, or a name of your own) it is inline text.

A reference's key is normalised (``.``/``..`` resolved, repeated slashes collapsed) before it
is checked, and it must name an object under this project's prefix of the data bucket:
keys that leave it, other buckets, control characters, backslashes and percent-encoded dots
or slashes are line errors.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote

from pydantic import ValidationError

from serval.domain import json_input, media
from serval.domain.models import DataRef, LineError, S3Ref, TaskCreate, TextRef
from serval.errors import ServalError

CSV_DATA_COLUMNS = frozenset({"image", "audio", "video", "document", "text", "source-ref", "source", "url"})
TASK_FIELDS = frozenset({"data", "metadata", "meta", "tags", "priority", "external_id", "id", "predictions"})
MAX_LINE_BYTES = 350_000
MAX_KEY_BYTES = 1024  # S3's limit on a key

# Data fields whose value is a reference by definition, with the media type a key without a
# recognisable extension takes (None: the key's extension must tell).
REFERENCE_FIELDS: dict[str, media.MediaType | None] = {
    "image": media.MediaType.IMAGE,
    "audio": media.MediaType.AUDIO,
    "video": media.MediaType.VIDEO,
    "document": media.MediaType.DOCUMENT,
    "source-ref": None,
    "url": None,
}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_UNSAFE_KEY = re.compile(r"[\x00-\x1f\x7f\\]")


def normalize_key(key: str) -> str:
    """``key`` with ``.`` and empty segments dropped and ``..`` resolved.

    Raises ValueError for a key that climbs above the bucket's root, holds control
    characters or backslashes, or hides a dot segment or a separator in percent-encoding
    (a client that decodes it would read another object than the one checked).
    """
    if _UNSAFE_KEY.search(key):
        raise ValueError(f"key {key!r} holds control characters or backslashes")
    parts: list[str] = []
    for segment in key.split("/"):
        decoded = unquote(segment)
        if decoded != segment and (decoded in {".", ".."} or _UNSAFE_KEY.search(decoded) or "/" in decoded):
            raise ValueError(f"key {key!r} hides a dot segment or a separator in percent-encoding")
        if segment in {"", "."}:
            continue
        if segment == "..":
            if not parts:
                raise ValueError(f"key {key!r} climbs above the bucket's root")
            parts.pop()
            continue
        parts.append(segment)
    normalized = "/".join(parts)
    if not normalized or len(normalized.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key {key!r} is empty or longer than {MAX_KEY_BYTES} bytes")
    return normalized


def in_prefix(bucket: str, key: str, data_bucket: str, prefix: str) -> bool:
    """Whether ``s3://bucket/key`` names an object under ``prefix`` of the data bucket as written:
    a key that only normalises into it (``a/../b``), another bucket or an unsafe key is not."""
    if bucket != data_bucket:
        return False
    try:
        normalized = normalize_key(key)
    except ValueError:
        return False
    return normalized == key and key.startswith(prefix) and len(key) > len(prefix)


@dataclass(frozen=True)
class ManifestContext:
    """What a manifest's references are resolved against."""

    data_bucket: str
    project_prefix: str  # e.g. "projects/p_123/"
    manifest_key: str

    def resolve(self, field: str, value: str) -> DataRef:
        """The data value ``value`` of field ``field``: a checked reference or inline text."""
        if value[:5].lower() == "s3://":
            bucket, _, key = value[5:].partition("/")
            if not bucket or not key:
                raise ValueError(f"malformed S3 URI {value!r}")
            return self.s3_ref(field, bucket, key)
        if field not in REFERENCE_FIELDS:
            return TextRef(text=value)
        if _SCHEME.match(value):
            scheme = value.split("://", 1)[0].lower()
            raise ValueError(f"{scheme}:// references are not supported; upload the file or use s3://")
        if not value.strip():
            raise ValueError(f"{field!r} is empty; it must name an object")
        if value.startswith("/"):
            raise ValueError(f"relative key {value!r} leaves the project's prefix")
        try:
            key = normalize_key(self.project_prefix + value)
        except ValueError as exc:
            raise ValueError(f"relative key {value!r}: {exc}") from None
        if not key.startswith(self.project_prefix):
            raise ValueError(f"relative key {value!r} leaves the project's prefix")
        return self._ref(field, key)

    def s3_ref(self, field: str, bucket: str, key: str) -> S3Ref:
        """A reference to ``s3://bucket/key``, refused unless it is under this project's prefix."""
        uri = f"s3://{bucket}/{key}"
        if bucket != self.data_bucket:
            raise ValueError(
                f"{uri!r} is outside the data bucket; references must be under "
                f"s3://{self.data_bucket}/{self.project_prefix}"
            )
        normalized = normalize_key(key)
        if not normalized.startswith(self.project_prefix):
            raise ValueError(f"{uri!r} is outside this project's prefix {self.project_prefix!r}")
        return self._ref(field, normalized)

    def _ref(self, field: str, key: str) -> S3Ref:
        media_type = media.detect(key) or REFERENCE_FIELDS.get(field)
        return S3Ref(bucket=self.data_bucket, key=key, media_type=media_type)


def _data_key(name: str) -> str:
    return {"source-ref": "image", "source": "text", "url": "image"}.get(name, name)


def _resolve_data(ctx: ManifestContext, raw: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            ref = ctx.resolve(name, value)
            key = name
            if name in {"source-ref", "url"} and isinstance(ref, S3Ref) and ref.media_type:
                key = media.DATA_KEY[ref.media_type]
            data[_data_key(key)] = ref
        elif isinstance(value, dict):
            data[name] = value  # an explicit {"kind": ...} reference, validated by the model
            if value.get("kind") == "s3":
                bucket, object_key = value.get("bucket"), value.get("key")
                if not isinstance(bucket, str) or not isinstance(object_key, str):
                    raise ValueError(f"data value {name!r}: an s3 reference needs a bucket and a key")
                checked = ctx.s3_ref(name, bucket, object_key)
                data[name] = {
                    **value,
                    "key": checked.key,
                    "media_type": value.get("media_type") or checked.media_type,
                }
        else:
            raise ValueError(f"data value {name!r} must be a string or an object")
    return data


def task_from_object(ctx: ManifestContext, obj: Any) -> TaskCreate:
    if not isinstance(obj, dict):
        raise ValueError("a manifest line must be a JSON object")
    if "data" in obj:
        if not isinstance(obj["data"], dict):
            raise ValueError("'data' must be an object")
        fields = {k: v for k, v in obj.items() if k in TASK_FIELDS}
        fields["data"] = _resolve_data(ctx, obj["data"])
        extra = {k: v for k, v in obj.items() if k not in TASK_FIELDS}
    else:
        refs = {k: v for k, v in obj.items() if k in {"source-ref", "source"}}
        if not refs:
            raise ValueError("a line needs 'data', 'source-ref' or 'source'")
        fields = {k: v for k, v in obj.items() if k in TASK_FIELDS - {"data"}}
        fields["data"] = _resolve_data(ctx, refs)
        extra = {k: v for k, v in obj.items() if k not in TASK_FIELDS and k not in refs}
    metadata = {**fields.pop("meta", {}), **fields.pop("metadata", {}), **extra}
    if "id" in fields:
        fields.setdefault("external_id", str(fields.pop("id")))
    return TaskCreate.model_validate({**fields, "metadata": metadata})


def explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:5]
        )
    return str(exc)


class RawLine(NamedTuple):
    """A manifest line as the S3 reader yields it: where it starts and its bytes (no terminator)."""

    offset: int
    data: bytes
    truncated: bool = False  # longer than MAX_LINE_BYTES: ``data`` holds its first MAX_LINE_BYTES + 1 bytes


@dataclass(frozen=True)
class TextLine:
    """A decoded manifest line and the byte offset where it starts in its manifest."""

    offset: int
    text: str
    truncated: bool = False  # longer than MAX_LINE_BYTES (``text`` is its beginning)


@dataclass(frozen=True)
class UndecodableLine:
    """A manifest line that is not UTF-8: reported as that line's error, never the file's."""

    raw: bytes
    reason: str
    offset: int = 0

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def error(self, number: int, offset: int | None = None) -> LineError:
        return LineError(
            line=number,
            offset=self.offset if offset is None else offset,
            error=self.reason,
            raw=self.raw.decode("utf-8", "backslashreplace")[:2000],
        )


Line = TextLine | UndecodableLine


class ParsedLine(NamedTuple):
    """One parsed line (a CSV row: one record) of a run of lines."""

    number: int  # 1-based among the lines parsed; a CSV row: its last line
    offset: int  # the byte offset where it (a CSV row: its first line) starts
    result: TaskCreate | LineError


def _too_long(number: int, offset: int, text: str) -> LineError:
    return LineError(
        line=number, offset=offset, error=f"line is longer than {MAX_LINE_BYTES} bytes", raw=text[:2000]
    )


def decode_lines(lines: Iterable[RawLine]) -> Iterator[Line]:
    """Each line as UTF-8 text (the manifest's leading BOM dropped), or an UndecodableLine for a
    bad one. An overlong line is decoded leniently: it is an error for its length alone."""
    for raw in lines:
        data = raw.data.removeprefix(codecs.BOM_UTF8) if raw.offset == 0 else raw.data
        if raw.truncated:
            yield TextLine(raw.offset, data.decode("utf-8", errors="replace"), truncated=True)
            continue
        try:
            yield TextLine(raw.offset, data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield UndecodableLine(data, f"not UTF-8 text: {exc.reason} at byte {exc.start}", raw.offset)


def parse_jsonl(ctx: ManifestContext, lines: Iterable[Line]) -> Iterator[ParsedLine]:
    """A task or an error for every non-blank line, numbered from 1 among ``lines``."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, UndecodableLine):
            yield ParsedLine(number, line.offset, line.error(number))
            continue
        text = line.text
        if not text.strip():
            continue
        try:
            if line.truncated or (len(text) > MAX_LINE_BYTES // 4 and len(text.encode()) > MAX_LINE_BYTES):
                yield ParsedLine(number, line.offset, _too_long(number, line.offset, text))
                continue
            yield ParsedLine(number, line.offset, task_from_object(ctx, json_input.loads(text)))
        except ServalError as exc:  # not JSON, nested too deep, NaN/Infinity, a number DynamoDB can't hold
            error = f"invalid JSON ({exc.code}): {exc.message}"
            yield ParsedLine(
                number, line.offset, LineError(line=number, offset=line.offset, error=error, raw=text[:2000])
            )
        except (ValueError, ValidationError, TypeError) as exc:
            yield ParsedLine(
                number,
                line.offset,
                LineError(line=number, offset=line.offset, error=explain(exc), raw=text[:2000]),
            )


def _csv_row(ctx: ManifestContext, row: dict[str, str]) -> TaskCreate:
    data = {k: v for k, v in row.items() if k in CSV_DATA_COLUMNS and v}
    if not data:
        raise ValueError(f"a row needs one of the columns {sorted(CSV_DATA_COLUMNS)}")
    obj: dict[str, Any] = {"data": data}
    if row.get("tags"):
        obj["tags"] = [t.strip() for t in row["tags"].replace("|", ";").split(";") if t.strip()]
    if row.get("priority"):
        obj["priority"] = int(row["priority"])
    if row.get("external_id"):
        obj["external_id"] = row["external_id"]
    meta = {
        k: v for k, v in row.items() if k not in CSV_DATA_COLUMNS | {"tags", "priority", "external_id"} and v
    }
    obj["metadata"] = meta
    return task_from_object(ctx, obj)


@dataclass(frozen=True)
class _CsvRecord:
    """One CSV record as ``csv.reader`` reads the lines (quoted cells may hold line breaks)."""

    last: int  # its last line (1-based among the lines read)
    offset: int  # where its first line starts
    values: list[str] | None  # None when csv could not read it (``error`` says why)
    error: str = ""
    flagged: Line | None = None  # a line of it that is not UTF-8, or too long

    def flagged_error(self, number: int) -> LineError:
        line = self.flagged
        if isinstance(line, UndecodableLine):
            return line.error(number, self.offset)
        assert line is not None
        return _too_long(number, self.offset, line.text)


def _csv_records(lines: Iterable[Line]) -> Iterator[_CsvRecord]:
    """The records of a run of lines, the header first. Lines go to the reader with their
    terminators back, so quoted multi-line cells keep theirs; a record holding an undecodable or
    overlong line is flagged with it (the reader gets its text with replacement characters)."""
    offsets: dict[int, int] = {}
    flagged: dict[int, Line] = {}

    def text_lines() -> Iterator[str]:
        for number, line in enumerate(lines, start=1):
            offsets[number] = line.offset
            if isinstance(line, UndecodableLine) or line.truncated:
                flagged[number] = line
            yield line.text + "\n"

    reader = csv.reader(text_lines())
    while True:
        first = reader.line_num + 1
        try:
            values: list[str] | None = next(reader)
            error = ""
        except StopIteration:
            return
        except csv.Error as exc:
            values, error = None, str(exc)
        last = reader.line_num
        bad = next((flagged[n] for n in range(first, last + 1) if n in flagged), None)
        yield _CsvRecord(last, offsets.get(first, 0), values, error, bad)
        for n in range(first, last + 1):
            offsets.pop(n, None)
            flagged.pop(n, None)


def _csv_header(head: _CsvRecord) -> list[str] | LineError:
    """The header's column names, or why it cannot be used (reported as line 1)."""
    if head.values is None:
        return LineError(line=1, offset=head.offset, error=f"unreadable CSV header: {head.error}", raw="")
    if head.flagged is not None:
        return head.flagged_error(1)
    header = [h.strip() for h in head.values]
    if len(set(header)) != len(header) or not any(h in CSV_DATA_COLUMNS for h in header):
        return LineError(
            line=1,
            offset=head.offset,
            error=f"the header needs unique names and one of {sorted(CSV_DATA_COLUMNS)}",
            raw=",".join(header),
        )
    return header


def parse_csv(ctx: ManifestContext, lines: Iterable[Line]) -> Iterator[ParsedLine]:
    """A task or an error for every non-blank row after the header, numbered by its last line."""
    records = _csv_records(lines)
    head = next(records, None)
    if head is None:
        return
    header = _csv_header(head)
    if isinstance(header, LineError):
        yield ParsedLine(1, head.offset, header)
        return
    for record in records:
        number, offset = record.last, record.offset
        if record.values is None:
            error = LineError(line=number, offset=offset, error=f"unreadable CSV row: {record.error}", raw="")
            yield ParsedLine(number, offset, error)
            continue
        if record.flagged is not None:
            yield ParsedLine(number, offset, record.flagged_error(number))
            continue
        values = record.values
        if not any(v.strip() for v in values):
            continue
        try:
            if len(values) != len(header):
                raise ValueError(f"row has {len(values)} fields, the header has {len(header)}")
            yield ParsedLine(number, offset, _csv_row(ctx, dict(zip(header, values, strict=True))))
        except (ValueError, ValidationError) as exc:
            error = LineError(line=number, offset=offset, error=explain(exc), raw=",".join(values)[:2000])
            yield ParsedLine(number, offset, error)


def csv_record_starts(lines: Iterable[Line]) -> Iterator[int]:
    """Where each record after the header starts, in file order: the offsets a CSV manifest may
    be split at (a quoted cell can hold line breaks, so not every line starts a record). Nothing
    when the header is unusable: such a manifest is read in one piece, which reports it."""
    records = _csv_records(lines)
    head = next(records, None)
    if head is None or isinstance(_csv_header(head), LineError):
        return
    for record in records:
        yield record.offset


def is_csv(manifest_key: str) -> bool:
    return media.extension(manifest_key) == ".csv"


def parse(ctx: ManifestContext, lines: Iterable[Line]) -> Iterator[ParsedLine]:
    if is_csv(ctx.manifest_key):
        return parse_csv(ctx, lines)
    return parse_jsonl(ctx, lines)


def primary_media(task: TaskCreate) -> media.MediaType:
    """The task's media type: its first S3 reference's type, else text."""
    for ref in task.data.values():
        if isinstance(ref, S3Ref):
            if ref.media_type is None:
                raise ValueError(
                    f"cannot tell the media type of {ref.key!r}: give it a media extension, or put it "
                    "in an image, audio, video or document field"
                )
            return ref.media_type
    return media.MediaType.TEXT
