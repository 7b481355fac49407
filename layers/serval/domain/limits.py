"""Size limits, in one place: what DynamoDB allows, and what Serval allows within that.

DynamoDB refuses an item over 400 KB and a transaction over 4 MB (and 100 actions). Serval's
own limits keep every item well inside that, with room for what the workflow adds to a task
later (tokens, annotator lists, gold results, the accepted annotation), and are checked
before anything is written, so oversize input is refused with a specific 422 (or a line
error in a manifest import), never a DynamoDB error.

JSON attributes are stored as :func:`stored_json` writes them (compact, UTF-8, no ``\\u``
escapes), so a JSON value's stored size is the UTF-8 length of that text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from serval.errors import AnnotationTooLarge, LabelConfigTooLarge

# DynamoDB's own limits
MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# a transaction of many puts leaves this much of MAX_TRANSACTION_BYTES to its other actions
# (counter updates, condition checks, an audit record)
TRANSACTION_RESERVE_BYTES = 64 * 1024

# Serval's limits (the README's "Limits" section states each of them)
MAX_INLINE_TEXT = 100_000  # UTF-8 bytes of one inline text; longer text goes to S3
MAX_METADATA_BYTES = 16_384  # a task's metadata, as stored
MAX_TASK_BYTES = 160_000  # a task item as stored when it is created (data, metadata, predictions, ...)
MAX_LABEL_CONFIG_BYTES = 131_072  # a label configuration, as stored
MAX_CLASSES_PER_CONTROL = 1_000
MAX_CLASSES = 2_000  # over all controls of a label configuration
MAX_ANNOTATION_BYTES = 100_000  # an annotation's results, as stored
MAX_REGIONS = 2_000  # boxes, polygons, keypoint sets, spans, segments, pages of one annotation
# An audit record keeps a before/after value inline up to this size; a larger one is stored
# beside the record, and the record holds its reference and SHA-256 (see adapters.audit).
MAX_AUDIT_INLINE_BYTES = 32_768

REGION_FIELDS = ("boxes", "polygons", "instances", "spans", "segments", "pages")


def stored_json(value: Any, default: Any = None) -> str:
    """The text a JSON attribute stores: compact, non-ASCII kept as is (1-4 UTF-8 bytes per
    character, not a 6-12 byte ``\\u`` escape). Text with lone surrogates, which UTF-8
    cannot hold, keeps its escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), default=default)
    return text


def json_bytes(value: Any, default: Any = None) -> int:
    """The stored size of a JSON value (UTF-8 bytes of :func:`stored_json`)."""
    return len(stored_json(value, default).encode("utf-8"))


def check_label_config(config: Any) -> None:
    """Refuse a label configuration over the class or size limits (``label_config_too_large``)."""
    per_control = {c.name: len(c.classes) for c in config.controls}
    crowded = {name: n for name, n in per_control.items() if n > MAX_CLASSES_PER_CONTROL}
    if crowded:
        raise LabelConfigTooLarge(
            f"a control may have at most {MAX_CLASSES_PER_CONTROL} classes",
            details={"classes": crowded, "limit": MAX_CLASSES_PER_CONTROL},
        )
    total = sum(per_control.values())
    if total > MAX_CLASSES:
        raise LabelConfigTooLarge(
            f"a label configuration may have at most {MAX_CLASSES} classes in all",
            details={"classes": total, "limit": MAX_CLASSES},
        )
    size = json_bytes(config.model_dump(mode="json"))
    if size > MAX_LABEL_CONFIG_BYTES:
        raise LabelConfigTooLarge(
            f"the label configuration is {size} bytes stored; the limit is {MAX_LABEL_CONFIG_BYTES}",
            details={"bytes": size, "limit": MAX_LABEL_CONFIG_BYTES},
        )


def check_annotation(results: Iterable[Any]) -> None:
    """Refuse results over the region or size limits (``annotation_too_large``)."""
    results = list(results)
    regions = sum(len(getattr(r, f, None) or ()) for r in results for f in REGION_FIELDS)
    if regions > MAX_REGIONS:
        raise AnnotationTooLarge(
            f"an annotation may have at most {MAX_REGIONS} regions",
            details={"regions": regions, "limit": MAX_REGIONS},
        )
    size = json_bytes([r.model_dump(mode="json", exclude_none=True) for r in results])
    if size > MAX_ANNOTATION_BYTES:
        raise AnnotationTooLarge(
            f"the annotation is {size} bytes stored; the limit is {MAX_ANNOTATION_BYTES}",
            details={"bytes": size, "limit": MAX_ANNOTATION_BYTES},
        )
