"""Dataset-export converters: pure, streaming, checked against independent parsers."""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from infra.local.datasets import datasets_dir
from serval.domain.exports import (
    DatasetExportCreate,
    ExportFilters,
    ExportFormat,
    ExportRecord,
    groundtruth,
    images,
    imagesize,
    latest,
    matches,
    tabular,
    text,
)
from serval.domain.exports.archive import zip_chunks
from serval.domain.label_config import LabelConfig
from serval.domain.lifecycle import TaskStatus
from serval.domain.media import MediaType
from serval.domain.models import Annotation, S3Ref, Task, TextRef
from serval.domain.results import BBoxResult, Box, ClassificationResult, NerResult, PolygonResult, Span

DATASETS = datasets_dir() / "images"
CONFIG = LabelConfig.model_validate(
    {
        "controls": [
            {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "square"}]},
            {"name": "objects", "type": "bbox", "classes": [{"name": "circle"}, {"name": "square"}]},
            {"name": "areas", "type": "polygon", "classes": [{"name": "lake"}]},
        ]
    }
)
AT = "2026-01-02T03:04:05.000Z"


def _task(i: int, media: MediaType = MediaType.IMAGE, text_value: str | None = None, **kw: object) -> Task:
    data = (
        {"text": TextRef(text=text_value)}
        if text_value is not None
        else {"image": S3Ref(bucket="data", key=f"projects/p/img{i}.png")}
    )
    return Task(
        task_id=f"t{i:04d}", project_id="p", data=data, media_type=media, created_at=AT, updated_at=AT, **kw
    )  # type: ignore[arg-type]


def _annotation(task_id: str, results: list[object], aid: str = "ann_1", version: int = 1) -> Annotation:
    return Annotation(
        annotation_id=aid,
        task_id=task_id,
        project_id="p",
        author="u1",
        results=results,  # type: ignore[arg-type]
        lead_time_s=1.0,
        label_config_version=version,
        created_at=AT,
    )


def _boxed(i: int, size: tuple[int, int] | None = (200, 100)) -> ExportRecord:
    task = _task(i)
    boxes = BBoxResult(
        control="objects",
        boxes=[
            Box(label="circle", x=0.1, y=0.2, w=0.3, h=0.4),
            Box(label="square", x=0.5, y=0.5, w=0.5, h=0.5),
        ],
    )
    shape = ClassificationResult(control="shape", labels=["square"])
    return ExportRecord(task, _annotation(task.task_id, [shape, boxes]), size)


# ---- image sizes ---------------------------------------------------------------------------


def _real_images() -> list[tuple[Path, tuple[int, int]]]:
    """The shared dataset's images with their sizes as its own metadata states them."""
    found: list[tuple[Path, tuple[int, int]]] = []
    with (DATASETS / "photos" / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            found.append((DATASETS / "photos" / row["file"], (int(row["width"]), int(row["height"]))))
    for line in (DATASETS / "shapes" / "boxes.jsonl").read_text().splitlines()[:20]:
        item = json.loads(line)
        found.append((DATASETS / "shapes" / item["file"], (item["width"], item["height"])))
    return found


def test_image_size_reads_real_png_and_jpeg_headers() -> None:
    cases = _real_images()
    assert any(p.suffix == ".jpg" for p, _ in cases) and any(p.suffix == ".png" for p, _ in cases)
    for path, size in cases:
        assert imagesize.size(path.read_bytes()[: imagesize.HEADER_BYTES]) == size, path


@pytest.mark.parametrize(
    ("head", "size"),
    [
        (b"GIF89a" + struct.pack("<HH", 31, 17) + b"\x00" * 8, (31, 17)),
        (b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 640, -480) + b"\x00" * 8, (640, 480)),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8X"
            + b"\x00" * 8
            + (99).to_bytes(3, "little")
            + (49).to_bytes(3, "little"),
            (100, 50),
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 7 + b"\x9d\x01\x2a" + struct.pack("<HH", 320, 240),
            (320, 240),
        ),
        (b"not an image at all", None),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", None),  # truncated before the SOF segment
    ],
)
def test_image_size_other_formats_and_unknowns(head: bytes, size: tuple[int, int] | None) -> None:
    assert imagesize.size(head) == size


# ---- selection -----------------------------------------------------------------------------


def test_latest_annotation_is_the_greatest_id_of_the_version_asked() -> None:
    older = _annotation("t", [], aid="ann_01", version=1)
    newer = _annotation("t", [], aid="ann_02", version=2)
    assert latest([newer, older]) is newer
    assert latest([newer, older], label_config_version=1) is older
    assert latest([newer, older], label_config_version=3) is None


def test_filters() -> None:
    task = _task(1, tags=["a"], status=TaskStatus.APPROVED)
    assert matches(task, ExportFilters())
    assert matches(task, ExportFilters(approved_only=True, tags=["a", "b"], status=[TaskStatus.APPROVED]))
    assert not matches(task, ExportFilters(tags=["b"]))
    assert not matches(task.model_copy(update={"status": TaskStatus.NEW}), ExportFilters(approved_only=True))
    assert not matches(task, ExportFilters.model_validate({"created_from": "2026-01-03T00:00:00Z"}))
    assert matches(task, ExportFilters.model_validate({"created_to": "2026-01-03T00:00:00+00:00"}))
    with pytest.raises(ValueError, match="created_from"):
        ExportFilters.model_validate(
            {"created_from": "2026-01-03T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"}
        )
    with pytest.raises(ValueError):
        DatasetExportCreate.model_validate({"format": "tiff"})


# ---- tabular -------------------------------------------------------------------------------


def test_json_array_jsonl_and_csv_stream_every_task() -> None:
    records = [_boxed(i) for i in range(3)] + [ExportRecord(_task(9), None)]
    array = json.loads(b"".join(tabular.json_chunks(iter(records))))
    lines = [json.loads(x) for x in b"".join(tabular.jsonl_chunks(iter(records))).splitlines()]
    assert array == lines
    assert [x["task_id"] for x in lines] == ["t0000", "t0001", "t0002", "t0009"]
    assert lines[0]["annotation"]["results"][1]["boxes"][0]["x"] == 0.1
    assert lines[3]["annotation"] is None
    rows = list(csv.DictReader(io.StringIO(b"".join(tabular.csv_chunks(iter(records))).decode(), newline="")))
    assert tuple(rows[0]) == tabular.CSV_COLUMNS
    assert json.loads(rows[0]["results"])[0] == {
        "control": "shape",
        "type": "classification",
        "labels": ["square"],
    }
    assert rows[3]["results"] == "" and rows[3]["annotation_id"] == ""
    assert json.loads(b"".join(tabular.json_chunks(iter([])))) == []


def test_json_is_yielded_in_chunks_not_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "FLUSH_CHARS", 1_000)
    chunks = list(tabular.json_chunks(_boxed(i) for i in range(50)))
    assert len(chunks) > 10
    assert len(json.loads(b"".join(chunks))) == 50


# ---- COCO, YOLO, VOC -----------------------------------------------------------------------


def test_coco_spools_and_converts_to_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "SPOOL_BYTES", 1_024)  # the spools roll over to disk
    polygon = PolygonResult(
        control="areas", polygons=[{"label": "lake", "points": [(0, 0), (0.5, 0), (0.5, 0.5)]}]
    )  # type: ignore[list-item]
    records = [_boxed(i) for i in range(40)]
    records.append(ExportRecord(_task(99), _annotation("t0099", [polygon]), (100, 100)))
    doc = json.loads(b"".join(images.coco_chunks(iter(records), CONFIG)))
    assert [c["name"] for c in doc["categories"]] == ["circle", "square", "lake"]
    assert len(doc["images"]) == 41 and len(doc["annotations"]) == 81
    first = doc["annotations"][0]
    assert first["bbox"] == pytest.approx([20, 20, 60, 40]) and first["area"] == pytest.approx(2400)
    assert first["category_id"] == 1 and first["image_id"] == 1
    assert len({a["id"] for a in doc["annotations"]}) == 81
    lake = doc["annotations"][-1]
    assert lake["category_id"] == 3 and lake["bbox"] == [0, 0, 50, 50] and lake["area"] == 1250
    assert doc["images"][0] == {
        "id": 1,
        "file_name": "s3://data/projects/p/img0.png",
        "width": 200,
        "height": 100,
        "serval_task_id": "t0000",
    }


def test_coco_refuses_a_record_without_size() -> None:
    with pytest.raises(ValueError, match="image size"):
        b"".join(images.coco_chunks(iter([_boxed(1, None)]), CONFIG))


def test_yolo_zip_has_data_yaml_labels_and_image_list() -> None:
    data = b"".join(images.yolo_chunks(iter([_boxed(1), ExportRecord(_task(2), None)]), CONFIG))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist() == ["data.yaml", "labels/t0001.txt", "labels/t0002.txt", "images.txt"]
    assert "nc: 2" in archive.read("data.yaml").decode()
    assert archive.read("labels/t0001.txt").decode().splitlines() == [
        "0 0.250000 0.400000 0.300000 0.400000",
        "1 0.750000 0.750000 0.500000 0.500000",
    ]
    assert archive.read("labels/t0002.txt") == b""
    assert archive.read("images.txt").decode().splitlines()[0] == "t0001\ts3://data/projects/p/img1.png"


def test_voc_xml_has_pixel_boxes() -> None:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(images.voc_chunks(iter([_boxed(1)])))))
    root = ET.fromstring(archive.read("Annotations/t0001.xml"))
    assert root.findtext("filename") == "img1.png" and root.findtext("size/width") == "200"
    boxes = [
        [int(o.findtext(f"bndbox/{k}") or -1) for k in ("xmin", "ymin", "xmax", "ymax")]
        for o in root.iter("object")
    ]
    assert boxes == [[20, 20, 80, 60], [100, 50, 200, 100]]


def test_zip_members_may_be_files_and_the_stream_never_seeks() -> None:
    chunks = list(zip_chunks(iter([("a.txt", b"a" * 10_000), ("b.txt", io.BytesIO(b"b" * 10_000))])))
    assert len(chunks) == 3  # one per member, then the central directory
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read("b.txt") == b"b" * 10_000


# ---- CoNLL, Ground Truth -------------------------------------------------------------------


def test_conll_bio_tags_on_code_point_offsets() -> None:
    value = "Émile  visited New York today"
    spans = [Span(label="PER", start=0, end=5), Span(label="LOC", start=15, end=23)]
    assert text.tag_tokens(value, spans) == [
        ("Émile", "B-PER"),
        ("visited", "O"),
        ("New", "B-LOC"),
        ("York", "I-LOC"),
        ("today", "O"),
    ]
    adjacent = [Span(label="LOC", start=0, end=3), Span(label="LOC", start=4, end=7)]
    assert text.tag_tokens("Foo Bar", adjacent) == [("Foo", "B-LOC"), ("Bar", "B-LOC")]


def test_conll_documents_round_trip() -> None:
    records = [
        ExportRecord(
            _task(1, MediaType.TEXT, "a b c"),
            _annotation("t0001", [NerResult(control="e", spans=[Span(label="X", start=2, end=5)])]),
        ),
        ExportRecord(_task(2, MediaType.TEXT, "  "), None),
    ]
    out = b"".join(text.conll_chunks(iter(records))).decode()
    assert text.read_conll(out) == [[("a", "O"), ("b", "B-X"), ("c", "I-X")], []]
    assert out.startswith(text.DOCSTART + "\n\n")


def test_groundtruth_line() -> None:
    line = groundtruth.manifest_line(_boxed(1), CONFIG)
    assert line["source-ref"] == "s3://data/projects/p/img1.png"
    assert line["shape"] == 1 and line["shape-metadata"]["class-name"] == "square"
    assert line["objects"]["annotations"][0] == {
        "class_id": 0,
        "left": 20,
        "top": 20,
        "width": 60,
        "height": 40,
    }
    assert line["objects-metadata"]["type"] == "groundtruth/object-detection"
    assert line["objects-metadata"]["human-annotated"] == "yes"
    text_line = groundtruth.manifest_line(ExportRecord(_task(2, MediaType.TEXT, "hi"), None), CONFIG)
    assert text_line == {"source": "hi"}


def test_every_format_has_a_file_name_and_type() -> None:
    for fmt in ExportFormat:
        assert fmt.extension and fmt.content_type


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"])
def test_a_formula_leading_csv_cell_gets_a_single_quote(lead: str) -> None:
    # Given a cell that a spreadsheet would evaluate
    from serval.domain.csv_safe import SafeWriter

    out = io.StringIO()
    # When it is written with the other cells of its row
    SafeWriter(out).writerow([f"{lead}1+1", "plain", "", "a=b", "'quoted"])
    # Then only that cell starts with a quote, and a CSV reader reads it back as text
    assert next(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [
        f"'{lead}1+1",
        "plain",
        "",
        "a=b",
        "'quoted",
    ]
