"""A SageMaker Ground Truth-style output manifest (JSON Lines, one line per task).

Each line has ``source-ref`` (the image's S3 URI) or ``source`` (inline text), then, for each
result of the exported annotation, a label attribute named after the result's control (Ground
Truth's *job name*) and its ``<control>-metadata``:

- ``bbox``: ``{"image_size": [{width, height, depth}], "annotations": [{class_id, left, top,
  width, height}]}`` in pixels, metadata type ``groundtruth/object-detection`` with
  ``class-map`` and one ``objects`` entry per box;
- ``classification``: the class id (a list of ids when the control is ``multiple``), metadata
  type ``groundtruth/image-classification`` or ``groundtruth/text-classification`` (with
  ``-multilabel`` for several), ``class-name`` / ``class-map``.

Other result types are left out of this format (use JSON Lines). A record whose box or
classification labels are no longer classes of their control is refused by
:func:`manifest_check` (the export counts it as failed). Every metadata object has
``human-annotated: "yes"``, ``creation-date`` (the annotation's time) and ``job-name``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from serval.domain.exports import ExportRecord, unknown_class
from serval.domain.exports.images import pixel_box, source_uri
from serval.domain.label_config import LabelConfig
from serval.domain.media import MediaType
from serval.domain.results import BBoxResult, ClassificationResult

FLUSH_CHARS = 256 * 1024


def _class_map(config: LabelConfig, control: str) -> dict[str, int]:
    spec = config.control(control)
    return {c.name: i for i, c in enumerate(spec.classes)} if spec else {}


def manifest_check(config: LabelConfig) -> Callable[[ExportRecord], str | None]:
    """Why a record's boxes or classifications cannot be written (their control is no longer
    in the label config, or a label is not one of its classes), or None."""

    def check(record: ExportRecord) -> str | None:
        for result in record.results():
            if isinstance(result, BBoxResult):
                labels = [b.label for b in result.boxes]
            elif isinstance(result, ClassificationResult):
                labels = list(result.labels)
            else:
                continue
            control = result.control
            if config.control(control) is None:
                return f"control {control!r} is not in the current label configuration"
            problem = unknown_class(labels, _class_map(config, control), control)
            if problem:
                return problem
        return None

    return check


def manifest_line(record: ExportRecord, config: LabelConfig) -> dict[str, Any]:
    line: dict[str, Any] = {}
    text = record.text()
    if record.image() is not None:
        line["source-ref"] = source_uri(record)
    elif text is not None:
        line["source"] = text
    a = record.annotation
    if a is None:
        return line
    common = {"human-annotated": "yes", "creation-date": a.created_at.rstrip("Z")}
    media = "image" if record.task.media_type is MediaType.IMAGE else "text"
    for result in a.results:
        ids = _class_map(config, result.control)
        class_map = {str(i): name for name, i in ids.items()}
        meta = {**common, "job-name": f"labeling-job/{result.control}"}
        if isinstance(result, BBoxResult):
            if record.image_size is None:
                raise ValueError(f"task {record.task.task_id}: boxes need the image size")
            width, height = record.image_size
            annotations = []
            for box in result.boxes:
                x, y, w, h = pixel_box(box, record.image_size)
                annotations.append(
                    {
                        "class_id": ids[box.label],
                        "left": round(x),
                        "top": round(y),
                        "width": round(w),
                        "height": round(h),
                    }
                )
            line[result.control] = {
                "image_size": [{"width": width, "height": height, "depth": 3}],
                "annotations": annotations,
            }
            line[f"{result.control}-metadata"] = {
                "objects": [{"confidence": 1.0 if b.score is None else b.score} for b in result.boxes],
                "class-map": class_map,
                "type": "groundtruth/object-detection",
                **meta,
            }
        elif isinstance(result, ClassificationResult):
            spec = config.control(result.control)
            if spec is not None and spec.multiple:
                line[result.control] = [ids[label] for label in result.labels]
                line[f"{result.control}-metadata"] = {
                    "confidence-map": {str(ids[label]): 1.0 for label in result.labels},
                    "class-map": class_map,
                    "type": f"groundtruth/{media}-classification-multilabel",
                    **meta,
                }
            else:
                line[result.control] = ids[result.labels[0]]
                line[f"{result.control}-metadata"] = {
                    "confidence": 1.0,
                    "class-name": result.labels[0],
                    "type": f"groundtruth/{media}-classification",
                    **meta,
                }
    return line


def manifest_chunks(records: Iterable[ExportRecord], config: LabelConfig) -> Iterator[bytes]:
    out = io.StringIO()
    for record in records:
        out.write(json.dumps(manifest_line(record, config), ensure_ascii=False, separators=(",", ":")) + "\n")
        if out.tell() >= FLUSH_CHARS:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")
