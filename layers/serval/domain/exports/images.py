"""Image formats: COCO (one JSON document), YOLO (zip) and Pascal VOC (zip).

Classes come from the label config's ``bbox`` (and, for COCO, ``polygon``) controls, in
config order; a class name used by two controls is one category. A record with a label that
is no class of the current config (renamed or removed since) is refused by the format's
check (:func:`coco_check`, :func:`yolo_check`) and counted as failed by the export job. Results are relative
(0..1); pixel coordinates use the record's ``image_size``, so COCO and VOC take only records
whose size is known (the export job counts the others as failed). Images are referenced by
their S3 URI, never copied.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any
from xml.etree import ElementTree as ET

from serval.domain.exports import ExportRecord, image_stem, unknown_class
from serval.domain.exports.archive import Member, zip_chunks
from serval.domain.label_config import ControlType, LabelConfig
from serval.domain.results import BBoxResult, Box, PolygonResult

SPOOL_BYTES = 1024 * 1024  # a temp file stays in memory up to this size, then goes to disk
COPY_CHUNK = 256 * 1024


def class_names(config: LabelConfig, types: frozenset[ControlType]) -> list[str]:
    names: list[str] = []
    for control in config.controls:
        if control.type in types:
            names += [c.name for c in control.classes if c.name not in names]
    return names


def source_uri(record: ExportRecord) -> str:
    ref = record.image()
    return f"s3://{ref.bucket}/{ref.key}" if ref else ""


def boxes(record: ExportRecord) -> list[Box]:
    return [b for r in record.results() if isinstance(r, BBoxResult) for b in r.boxes]


COCO_TYPES = frozenset({ControlType.BBOX, ControlType.POLYGON})
YOLO_TYPES = frozenset({ControlType.BBOX})


def coco_check(config: LabelConfig) -> Callable[[ExportRecord], str | None]:
    """Why COCO cannot write a record (a box or polygon label that is no category), or None."""
    known = frozenset(class_names(config, COCO_TYPES))

    def check(record: ExportRecord) -> str | None:
        polygons = [p.label for r in record.results() if isinstance(r, PolygonResult) for p in r.polygons]
        return unknown_class([b.label for b in boxes(record)] + polygons, known)

    return check


def yolo_check(config: LabelConfig) -> Callable[[ExportRecord], str | None]:
    """Why YOLO cannot write a record (a box label that is no class), or None."""
    known = frozenset(class_names(config, YOLO_TYPES))
    return lambda record: unknown_class([b.label for b in boxes(record)], known)


def pixel_box(box: Box, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` in pixels."""
    w, h = size
    return (box.x * w, box.y * h, box.w * w, box.h * h)


def _round(value: float) -> float:
    return round(value, 2)


# ---- COCO ----------------------------------------------------------------------------------


def coco_chunks(records: Iterable[ExportRecord], config: LabelConfig) -> Iterator[bytes]:
    """A COCO detection document. ``images`` and ``annotations`` are spooled to temporary
    files while the records stream past, then concatenated after the categories."""
    names = class_names(config, COCO_TYPES)
    category = {name: i + 1 for i, name in enumerate(names)}
    with (
        tempfile.SpooledTemporaryFile(SPOOL_BYTES) as images,
        tempfile.SpooledTemporaryFile(SPOOL_BYTES) as annotations,
    ):
        annotation_id = 0
        for image_id, record in enumerate(records, start=1):
            if record.image_size is None:
                raise ValueError(f"task {record.task.task_id}: COCO needs the image size")
            width, height = record.image_size
            image = {
                "id": image_id,
                "file_name": source_uri(record),
                "width": width,
                "height": height,
                "serval_task_id": record.task.task_id,
            }
            _append(images, image)
            for item in _coco_annotations(record, category):
                annotation_id += 1
                _append(annotations, {"id": annotation_id, "image_id": image_id, **item})
        head = {
            "info": {"description": "Serval dataset export", "version": str(config.version)},
            "licenses": [],
            "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in category.items()],
        }
        yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "images": ['
        yield from _copy(images)
        yield b'], "annotations": ['
        yield from _copy(annotations)
        yield b"]}\n"


def _coco_annotations(record: ExportRecord, category: dict[str, int]) -> Iterator[dict[str, Any]]:
    assert record.image_size is not None
    width, height = record.image_size
    for result in record.results():
        if isinstance(result, BBoxResult):
            for box in result.boxes:
                x, y, w, h = pixel_box(box, record.image_size)
                yield {
                    "category_id": category[box.label],
                    "bbox": [_round(x), _round(y), _round(w), _round(h)],
                    "area": _round(w * h),
                    "iscrowd": 0,
                    "segmentation": [],
                }
        elif isinstance(result, PolygonResult):
            for polygon in result.polygons:
                points = [(px * width, py * height) for px, py in polygon.points]
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                yield {
                    "category_id": category[polygon.label],
                    "bbox": [
                        _round(min(xs)),
                        _round(min(ys)),
                        _round(max(xs) - min(xs)),
                        _round(max(ys) - min(ys)),
                    ],
                    "area": _round(_shoelace(points)),
                    "iscrowd": 0,
                    "segmentation": [[_round(v) for p in points for v in p]],
                }


def _shoelace(points: list[tuple[float, float]]) -> float:
    return (
        abs(
            sum(
                x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=False)
            )
        )
        / 2
    )


def _append(spool: IO[bytes], item: dict[str, Any]) -> None:
    if spool.tell():
        spool.write(b",")
    spool.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())


def _copy(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(COPY_CHUNK):
        yield chunk


# ---- YOLO ----------------------------------------------------------------------------------


def yolo_line(class_id: int, box: Box) -> str:
    """``class cx cy w h``, all relative."""
    return f"{class_id} {box.x + box.w / 2:.6f} {box.y + box.h / 2:.6f} {box.w:.6f} {box.h:.6f}"


def yolo_members(records: Iterable[ExportRecord], config: LabelConfig) -> Iterator[Member]:
    """``data.yaml``, then ``labels/<task id>.txt`` per image, then ``images.txt``
    (``<task id>\\t<s3 uri>`` per line, spooled while the labels stream)."""
    names = class_names(config, YOLO_TYPES)
    index = {name: i for i, name in enumerate(names)}
    yaml = [
        "# Serval export: labels/<task id>.txt; images.txt maps task ids to source images",
        "path: .",
        "train: images.txt",
        f"nc: {len(names)}",
        "names:",
    ]
    yaml += [f"  {i}: {json.dumps(name, ensure_ascii=False)}" for i, name in enumerate(names)]
    yield "data.yaml", ("\n".join(yaml) + "\n").encode()
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as listing:
        for record in records:
            lines = [yolo_line(index[b.label], b) for b in boxes(record)]
            yield f"labels/{image_stem(record)}.txt", "".join(f"{line}\n" for line in lines).encode()
            listing.write(f"{record.task.task_id}\t{source_uri(record)}\n".encode())
        listing.seek(0)
        yield "images.txt", listing


def yolo_chunks(records: Iterable[ExportRecord], config: LabelConfig) -> Iterator[bytes]:
    return zip_chunks(yolo_members(records, config))


# ---- Pascal VOC ----------------------------------------------------------------------------


def voc_xml(record: ExportRecord) -> bytes:
    """One image's Pascal VOC annotation (pixel ``bndbox``, 0-based, rounded)."""
    if record.image_size is None:
        raise ValueError(f"task {record.task.task_id}: VOC needs the image size")
    width, height = record.image_size
    ref = record.image()
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = ""
    ET.SubElement(root, "filename").text = ref.key.rsplit("/", 1)[-1] if ref else ""
    ET.SubElement(root, "path").text = source_uri(record)
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "Serval"
    ET.SubElement(source, "serval_task_id").text = record.task.task_id
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    for box in boxes(record):
        x, y, w, h = pixel_box(box, record.image_size)
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = box.label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(bndbox, tag).text = str(round(value))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def voc_members(records: Iterable[ExportRecord]) -> Iterator[Member]:
    """``Annotations/<task id>.xml`` per image, then ``ImageSets/Main/default.txt``."""
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as listing:
        for record in records:
            yield f"Annotations/{image_stem(record)}.xml", voc_xml(record)
            listing.write(f"{image_stem(record)}\n".encode())
        listing.seek(0)
        yield "ImageSets/Main/default.txt", listing


def voc_chunks(records: Iterable[ExportRecord]) -> Iterator[bytes]:
    return zip_chunks(voc_members(records))
