"""Manifest parsing: JSONL and CSV lines to tasks, each broken line to a LineError.

Accepted JSONL line shapes (one JSON object per line):
- Serval / Label Studio style: ``{"data": {"image": "s3://b/k.png", "text": "..."}, "tags": [...],
  "priority": 3, "metadata": {...}, "external_id": "...", "predictions": [...]}``
- Ground Truth style: ``{"source-ref": "s3://b/k.png", ...}`` or ``{"source": "inline text", ...}``;
  other top-level keys become metadata.

CSV: a header row; columns named like data keys (``image``, ``audio``, ``video``, ``document``,
``text``, ``source-ref``, ``source``) become data; ``tags`` (separated by ``;`` or ``|``),
``priority`` and ``external_id`` are task fields; every other column becomes metadata.

A data value is an S3 reference when it is ``s3://bucket/key``, or a relative key with a
media extension, resolved against the project's prefix ``projects/<id>/`` (so a folder
copied there keeps working: ``images/a.png`` is ``projects/<id>/images/a.png``), never
outside it; otherwise it is inline text.
"""

from __future__ import annotations

import csv
import json
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from serval.domain import media
from serval.domain.models import DataRef, LineError, S3Ref, TaskCreate, TextRef

CSV_DATA_COLUMNS = frozenset({"image", "audio", "video", "document", "text", "source-ref", "source", "url"})
TASK_FIELDS = frozenset({"data", "metadata", "meta", "tags", "priority", "external_id", "id", "predictions"})
MAX_LINE_BYTES = 350_000


@dataclass(frozen=True)
class ManifestContext:
    """What a manifest's references are resolved against."""

    data_bucket: str
    project_prefix: str  # e.g. "projects/p_123/"
    manifest_key: str

    def resolve(self, value: str) -> DataRef:
        scheme = value.split("://", 1)[0].lower() if "://" in value[:12] else ""
        if scheme and scheme != "s3":
            raise ValueError(f"{scheme}:// references are not supported; upload the file or use s3://")
        if value.startswith("s3://"):
            bucket, _, key = value[5:].partition("/")
            if not bucket or not key:
                raise ValueError(f"malformed S3 URI {value!r}")
            if bucket == self.data_bucket and not key.startswith(self.project_prefix):
                raise ValueError(f"{value!r} is outside this project's prefix {self.project_prefix!r}")
            return S3Ref(bucket=bucket, key=key, media_type=media.detect(key))
        if media.detect(value) is not None and "\n" not in value and len(value) < 1024:
            key = posixpath.normpath(posixpath.join(self.project_prefix, value))
            if value.startswith("/") or not key.startswith(self.project_prefix):
                raise ValueError(f"relative key {value!r} leaves the project's prefix")
            return S3Ref(bucket=self.data_bucket, key=key, media_type=media.detect(key))
        return TextRef(text=value)


def _data_key(name: str) -> str:
    return {"source-ref": "image", "source": "text", "url": "image"}.get(name, name)


def _resolve_data(ctx: ManifestContext, raw: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            ref = ctx.resolve(value)
            key = name
            if name in {"source-ref", "url"} and isinstance(ref, S3Ref) and ref.media_type:
                key = media.DATA_KEY[ref.media_type]
            data[_data_key(key)] = ref
        elif isinstance(value, dict):
            data[name] = value  # an explicit {"kind": ...} reference, validated by the model
            if value.get("kind") == "s3":
                checked = ctx.resolve(f"s3://{value.get('bucket')}/{value.get('key')}")
                detected = checked.media_type if isinstance(checked, S3Ref) else None
                data[name] = {**value, "media_type": value.get("media_type") or detected}
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


ParsedLine = tuple[int, TaskCreate | LineError]


def parse_jsonl(ctx: ManifestContext, lines: Iterable[str]) -> Iterator[ParsedLine]:
    """Yield ``(line_number, task or error)`` for every non-blank line, 1-based."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_LINE_BYTES // 4 and len(line.encode()) > MAX_LINE_BYTES:
                raise ValueError(f"line is longer than {MAX_LINE_BYTES} bytes")
            yield number, task_from_object(ctx, json.loads(line))
        except (ValueError, ValidationError, TypeError) as exc:
            reason = f"invalid JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else explain(exc)
            yield number, LineError(line=number, error=reason, raw=line[:2000])
        except RecursionError:
            yield number, LineError(line=number, error="invalid JSON: nested too deeply", raw=line[:2000])


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


def parse_csv(ctx: ManifestContext, lines: Iterable[str]) -> Iterator[ParsedLine]:
    # lines arrive without terminators; give them back so quoted multi-line cells keep theirs
    reader = csv.reader(line + "\n" for line in lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, LineError(line=1, error=f"unreadable CSV header: {exc}", raw="")
        return
    if len(set(header)) != len(header) or not any(h in CSV_DATA_COLUMNS for h in header):
        yield (
            1,
            LineError(
                line=1,
                error=f"the header needs unique names and one of {sorted(CSV_DATA_COLUMNS)}",
                raw=",".join(header),
            ),
        )
        return
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, LineError(line=reader.line_num, error=f"unreadable CSV row: {exc}", raw="")
            continue
        number = reader.line_num
        if not any(v.strip() for v in values):
            continue
        try:
            if len(values) != len(header):
                raise ValueError(f"row has {len(values)} fields, the header has {len(header)}")
            yield number, _csv_row(ctx, dict(zip(header, values, strict=True)))
        except (ValueError, ValidationError) as exc:
            yield number, LineError(line=number, error=explain(exc), raw=",".join(values)[:2000])


def parse(ctx: ManifestContext, lines: Iterable[str]) -> Iterator[ParsedLine]:
    if media.extension(ctx.manifest_key) == ".csv":
        return parse_csv(ctx, lines)
    return parse_jsonl(ctx, lines)


def primary_media(task: TaskCreate) -> media.MediaType:
    """The task's media type: its first S3 reference's type, else text."""
    for ref in task.data.values():
        if isinstance(ref, S3Ref):
            if ref.media_type is None:
                raise ValueError(f"cannot tell the media type of {ref.key!r}")
            return ref.media_type
    return media.MediaType.TEXT
