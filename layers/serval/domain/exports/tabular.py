"""JSON (one array), JSON Lines and CSV: every task with its exported annotation.

Each task is one object (:func:`task_object`; its JSON Schema is in ``docs/exports.md``).
CSV has one row per task with the fixed header :data:`CSV_COLUMNS`; ``data``, ``tags``,
``metadata`` and ``results`` are compact JSON strings, a missing value is an empty cell;
formula-leading cells get a leading ``'`` (:mod:`serval.domain.csv_safe`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from serval.domain.csv_safe import SafeWriter
from serval.domain.exports import ExportRecord

FLUSH_CHARS = 256 * 1024

CSV_COLUMNS: tuple[str, ...] = (
    "task_id",
    "external_id",
    "status",
    "media_type",
    "created_at",
    "tags",
    "metadata",
    "data",
    "annotation_id",
    "author",
    "annotated_at",
    "label_config_version",
    "results",
)


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def task_object(record: ExportRecord) -> dict[str, Any]:
    task = record.task.model_dump(
        mode="json",
        include={"task_id", "external_id", "status", "media_type", "data", "metadata", "tags", "created_at"},
    )
    a = record.annotation
    task["annotation"] = (
        None
        if a is None
        else {
            "annotation_id": a.annotation_id,
            "author": a.author,
            "created_at": a.created_at,
            "label_config_version": a.label_config_version,
            "lead_time_s": a.lead_time_s,
            "results": [r.model_dump(mode="json", exclude_none=True) for r in a.results],
        }
    )
    return task


def jsonl_chunks(records: Iterable[ExportRecord]) -> Iterator[bytes]:
    out = io.StringIO()
    for record in records:
        out.write(_compact(task_object(record)) + "\n")
        if out.tell() >= FLUSH_CHARS:
            yield _take(out)
    yield _take(out)


def json_chunks(records: Iterable[ExportRecord]) -> Iterator[bytes]:
    """One JSON array, written an element at a time."""
    out = io.StringIO()
    out.write("[")
    for i, record in enumerate(records):
        out.write(("\n" if i == 0 else ",\n") + _compact(task_object(record)))
        if out.tell() >= FLUSH_CHARS:
            yield _take(out)
    out.write("\n]\n")
    yield _take(out)


def csv_row(record: ExportRecord) -> list[str]:
    t, a = record.task, record.annotation
    data = {k: v.model_dump(mode="json", exclude_none=True) for k, v in t.data.items()}
    return [
        t.task_id,
        t.external_id or "",
        t.status.value,
        t.media_type.value,
        t.created_at,
        _compact(t.tags),
        _compact(t.metadata),
        _compact(data),
        a.annotation_id if a else "",
        a.author if a else "",
        a.created_at if a else "",
        str(a.label_config_version) if a else "",
        _compact([r.model_dump(mode="json", exclude_none=True) for r in a.results]) if a else "",
    ]


def csv_chunks(records: Iterable[ExportRecord]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(csv_row(record))
        if out.tell() >= FLUSH_CHARS:
            yield _take(out)
    yield _take(out)


def _take(out: io.StringIO) -> bytes:
    data = out.getvalue().encode("utf-8")
    out.seek(0)
    out.truncate()
    return data
