"""Dataset exports of large projects fan out over the jobs queue (moto, the real worker path).

The shard size is lowered to 50 tasks, so a project of 300 tasks runs in 6 shards; its
result must be the very bytes the one-piece path writes for the same project.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterator
from typing import Any

import moto.s3.models
import pytest

from serval.adapters import jobs as job_store
from serval.domain import events
from serval.domain.actor import Actor
from serval.domain.exports import shards
from serval.logic import dataset_export
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.streams import StreamReader
from tests.integration.test_dataset_export import (
    IMAGES,
    LABELS,
    WorkerContext,
    annotate,
    create_project,
    sqs_records,
)

TASKS = 300
SHARD_TASKS = 50
PART = 64 * 1024
BROKEN = 7  # the task whose "image" is not one: COCO cannot size it


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Parts of 64 KiB (moto allowed to take them); every closed writer is logged with its
    parts, bytes and the largest buffer it held."""
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", PART)
    monkeypatch.setattr(job_store, "MIN_PART_BYTES", PART)
    monkeypatch.setattr(dataset_export, "PART_BYTES", PART)
    log: list[dict[str, Any]] = []
    largest: dict[int, int] = {}
    write, close = job_store.ResultWriter.write, job_store.ResultWriter.close

    def watched_write(self: job_store.ResultWriter, data: bytes) -> None:
        write(self, data)
        largest[id(self)] = max(largest.get(id(self), 0), len(self._buffer))

    def watched_close(self: job_store.ResultWriter) -> None:
        close(self)
        log.append(
            {
                "key": self.key,
                "parts": self.parts,
                "bytes": self.bytes_written,
                "largest": largest.get(id(self), 0),
            }
        )

    monkeypatch.setattr(job_store.ResultWriter, "write", watched_write)
    monkeypatch.setattr(job_store.ResultWriter, "close", watched_close)
    return log


@pytest.fixture
def big_project(aws: Aws, admin: Actor) -> str:
    """Given an image project of 300 tasks: most with their size in metadata, every 60th a
    real PNG sized from its header, one broken file; every 10th task annotated with a box."""
    project_id = create_project(admin, "image", LABELS)
    bucket = aws.env["DATA_BUCKET"]
    png, broken = f"projects/{project_id}/shapes.png", f"projects/{project_id}/broken.png"
    aws.s3.put_object(Bucket=bucket, Key=png, Body=(IMAGES / "shapes/shapes_000.png").read_bytes())
    aws.s3.put_object(Bucket=bucket, Key=broken, Body=b"not an image")
    items = []
    for i in range(TASKS):
        key = broken if i == BROKEN else png if i % 60 == 0 else f"projects/{project_id}/{i}.png"
        metadata: dict[str, Any] = {"note": f"task {i} " + "n" * 1500}  # shard files of several parts
        if i != BROKEN and i % 60:
            metadata |= {"width": 640, "height": 480}
        items.append({"data": {"image": f"s3://{bucket}/{key}"}, "metadata": metadata})
    created = call("POST", f"/projects/{project_id}/tasks", admin, items)
    assert created.status == 201, created.body
    box = {"label": "square", "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4}
    for task_id in created.body["task_ids"][::10]:
        annotate(project_id, task_id, admin, [{"control": "objects", "type": "bbox", "boxes": [box]}])
    return project_id


def _drain(aws: Aws, duplicate: Iterator[str] | None = None) -> list[dict[str, Any]]:
    """Run the jobs worker on the jobs queue until it is empty, one message per invocation
    (the queue's batch size); bodies of ``duplicate`` steps are delivered twice in a row.
    Returns the bodies run."""
    from jobs.handler import handler

    url, ran = aws.env["JOBS_QUEUE_URL"], []
    twice = set(duplicate or ())
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", []):
        body = json.loads(messages[0]["Body"])
        step = body.get("step", "run") + (f"#{body['shard']}" if "shard" in body else "")
        for _ in range(2 if step in twice else 1):
            response = handler({"Records": sqs_records(messages)}, WorkerContext())  # type: ignore[arg-type]
            assert response["batchItemFailures"] == []
            ran.append(body)
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    return ran


def _export(
    aws: Aws, admin: Actor, project_id: str, fmt: str, duplicate: Iterator[str] | None = None
) -> tuple[dict[str, Any], bytes, list[dict[str, Any]]]:
    created = call("POST", f"/projects/{project_id}/exports", admin, {"format": fmt})
    assert created.status == 202, created.body
    ran = _drain(aws, duplicate)
    done = call("GET", f"/projects/{project_id}/exports/{created.body['job_id']}", admin)
    assert done.body["status"] == "succeeded", done.body.get("error")
    data = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=done.body["result_key"])["Body"].read()
    return dict(done.body), bytes(data), ran


def _content(fmt: str, data: bytes) -> object:
    """What must be identical: the bytes, or for a zip its members in order (zip headers
    carry the time each member was written)."""
    if fmt not in ("yolo", "voc"):
        return data
    archive = zipfile.ZipFile(io.BytesIO(data))
    return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _steps(ran: list[dict[str, Any]]) -> list[str]:
    return [body.get("step", "run") for body in ran]


@pytest.mark.parametrize("fmt", ["jsonl", "coco", "yolo", "groundtruth"])
def test_a_large_export_fans_out_and_writes_what_one_piece_writes(
    aws: Aws,
    admin: Actor,
    big_project: str,
    small_parts: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    # Given the export written in one piece (300 tasks: under the default shard size)
    single, expected, ran = _export(aws, admin, big_project, fmt)
    assert _steps(ran) == ["run"] and single["shards"] is None
    small_parts.clear()
    # When the shard size is 50 tasks
    monkeypatch.setenv("EXPORT_SHARD_TASKS", str(SHARD_TASKS))
    job, data, ran = _export(aws, admin, big_project, fmt)
    # Then the job fanned out into 6 shard messages, then one assemble message
    count = math.ceil(TASKS / SHARD_TASKS)
    assert _steps(ran) == ["run"] + ["shard"] * count + ["assemble"]
    assert sorted(body["shard"] for body in ran if "shard" in body) == list(range(count))
    assert (job["shards"], job["shards_done"]) == (count, count)
    # And the result is the same bytes, counts and failures as the one-piece export
    assert _content(fmt, data) == _content(fmt, expected)
    assert (job["counts"], job["error"]) == (single["counts"], single["error"])
    if fmt == "coco":
        assert job["counts"]["failed"] == 1 and "image size unknown" in job["error"]
    # And each shard was streamed into its own file in parts, never held whole
    shard_writes = [w for w in small_parts if "/shards/" in w["key"]]
    assert sorted(w["key"] for w in shard_writes) == [
        shards.shard_key(big_project, job["job_id"], n) for n in range(count)
    ]
    for write in shard_writes:  # (a shard file under one part is one PutObject: no parts)
        assert write["parts"] == (math.ceil(write["bytes"] / PART) if write["bytes"] > PART else 0)
        assert write["largest"] < PART
    assert sum(w["parts"] for w in shard_writes) >= 2 * count  # ~50 tasks of ~1.7 KB each
    # And the shard files were deleted once assembled
    listed = aws.s3.list_objects_v2(
        Bucket=aws.env["EXPORT_BUCKET"], Prefix=f"dataset-exports/{big_project}/{job['job_id']}/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_a_fanned_out_export_after_a_class_rename_completes_and_counts_those_tasks_failed(
    aws: Aws, admin: Actor, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a large project whose boxes are labelled "square", then the class renamed to "box"
    from tests.integration.test_dataset_export import RENAMED

    assert call("PATCH", f"/projects/{big_project}", admin, {"label_config": RENAMED}).status == 200
    # When it is exported as COCO in shards
    monkeypatch.setenv("EXPORT_SHARD_TASKS", str(SHARD_TASKS))
    job, data, ran = _export(aws, admin, big_project, "coco")
    # Then it assembled and succeeded; the 30 boxed tasks (and the broken image) failed, with reasons
    assert _steps(ran)[-1] == "assemble"
    assert job["counts"] == {"done": TASKS - 31, "failed": 31}
    assert "label 'square' is not a class of the current label configuration" in job["error"]
    assert json.loads(data)["annotations"] == []


def test_redelivered_shard_and_assemble_messages_are_idempotent(
    aws: Aws, admin: Actor, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = StreamReader(aws.env["TASKS_TABLE"])
    single, expected, _ = _export(aws, admin, big_project, "jsonl")
    # Given a fanned-out export whose first shard and assemble messages are each delivered twice
    monkeypatch.setenv("EXPORT_SHARD_TASKS", str(SHARD_TASKS))
    stream.read()
    job, data, ran = _export(aws, admin, big_project, "jsonl", duplicate=iter(["shard#0", "assemble"]))
    assert _steps(ran).count("assemble") == 2 and _steps(ran).count("shard") == 7
    # Then nothing was counted twice, and there is one result, the same as in one piece
    assert job["counts"] == single["counts"] == {"done": TASKS, "failed": 0}
    assert data == expected
    results = aws.s3.list_objects_v2(
        Bucket=aws.env["EXPORT_BUCKET"], Prefix=f"dataset-exports/{big_project}/"
    )
    assert sorted(o["Key"] for o in results["Contents"]) == sorted([single["result_key"], job["result_key"]])
    # And the job's completion was announced once
    announced = [
        e
        for r in stream.read()
        for e in events.from_change(
            r["eventID"],
            r["eventName"],
            r["dynamodb"].get("OldImage", {}),
            r["dynamodb"].get("NewImage", {}),
            "",
        )
        if e.type == "export.completed"
    ]
    assert [e.data["job_id"] for e in announced] == [job["job_id"]]
    assert announced[0].data["done"] == TASKS


def test_a_shard_that_fails_fails_the_job_with_its_reason(
    aws: Aws, admin: Actor, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fanned-out export whose third shard meets a timeout
    monkeypatch.setenv("EXPORT_SHARD_TASKS", str(SHARD_TASKS))
    from serval.domain.jobs import JobTimedOut
    from serval.logic import export_fanout

    gather = export_fanout.gather

    def flaky(job: Any, shard: int, count: int, time_left: Any) -> Any:
        if shard == 2:
            raise JobTimedOut("the export stopped after 40 tasks: it did not finish in time")
        return gather(job, shard, count, time_left)

    monkeypatch.setattr(export_fanout, "gather", flaky)
    created = call("POST", f"/projects/{big_project}/exports", admin, {"format": "jsonl"})
    ran = _drain(aws)
    # Then the job failed, naming the shard and why; nothing was assembled
    job = call("GET", f"/projects/{big_project}/exports/{created.body['job_id']}", admin).body
    assert job["status"] == "failed"
    assert job["error"] == "shard 3 of 6 failed: the export stopped after 40 tasks: it did not finish in time"
    assert "assemble" not in _steps(ran) and job["result_key"] is None


def test_a_shard_with_transient_errors_is_retried_then_fails_the_job(
    aws: Aws, admin: Actor, big_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serval.logic import export_fanout, jobs

    monkeypatch.setenv("EXPORT_SHARD_TASKS", str(SHARD_TASKS))

    def broken(*_: Any) -> Any:
        raise ConnectionError("network down")

    monkeypatch.setattr(export_fanout, "gather", broken)
    created = call("POST", f"/projects/{big_project}/exports", admin, {"format": "jsonl"})
    job_id = created.body["job_id"]
    assert jobs.process_message(
        json.dumps({"job_id": job_id, "project_id": big_project}), lambda: 900
    ).kind == ("fanned_out")
    shard = json.dumps(
        {"job_id": job_id, "project_id": big_project, "step": "shard", "shard": 0, "shards": 6}
    )
    # When shard 0 crashes on each of its deliveries: the first ones raise (SQS redelivers)
    for _ in range(jobs.MAX_ATTEMPTS - 1):
        with pytest.raises(ConnectionError):
            jobs.process_message(shard, lambda: 900)
        _expire_shard_lease(aws, big_project, job_id, 0)
    # Then the last one fails the job with the reason
    assert jobs.process_message(shard, lambda: 900).kind == "failed"
    job = call("GET", f"/projects/{big_project}/exports/{job_id}", admin).body
    assert (job["status"], job["error"]) == (
        "failed",
        "shard 1 of 6 gave up after 3 attempts: ConnectionError",
    )


def _expire_shard_lease(aws: Aws, project_id: str, job_id: str, shard: int) -> None:
    from serval import keys

    aws.ddb.update_item(
        TableName=aws.env["TASKS_TABLE"],
        Key={"PK": {"S": keys.project_pk(project_id)}, "SK": {"S": keys.job_sk(job_id)}},
        UpdateExpression="SET shard_leases.#n = :zero",
        ExpressionAttributeNames={"#n": str(shard)},
        ExpressionAttributeValues={":zero": {"N": "0"}},
    )
