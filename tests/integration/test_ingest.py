"""Ingestion against moto: media objects, manifests, broken lines, redelivery, request counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.metering import metered
from infra.local import patches
from serval.adapters import dynamo
from serval.domain.label_config import LabelConfig
from serval.domain.media import MediaType
from serval.domain.models import ProjectCreate
from serval.logic import ingest, projects
from tests.integration.conftest import Aws


def _project(admin: Any, media_types: list[str]) -> str:
    config = LabelConfig.model_validate(
        {"controls": [{"name": "label", "type": "classification", "classes": [{"name": "a"}, {"name": "b"}]}]}
    )
    request = ProjectCreate(name="p", media_types=[MediaType(m) for m in media_types], label_config=config)
    return projects.create(request, admin).project_id


def _s3_event(aws: Aws, key: str) -> str:
    bucket = aws.env["DATA_BUCKET"]
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "uploader"},
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {
                            "key": key.replace(" ", "+"),
                            "eTag": head["ETag"].strip('"'),
                            "size": head["ContentLength"],
                        },
                    },
                }
            ]
        }
    )


def _upload(aws: Aws, key: str, body: bytes) -> str:
    aws.s3.put_object(Bucket=aws.env["DATA_BUCKET"], Key=key, Body=body)
    return _s3_event(aws, key)


def _forever() -> float:
    return 900.0


def _task_count(project_id: str) -> int:
    return sum(dynamo.read_counters(project_id).values())


def test_media_object_becomes_one_task_even_when_delivered_three_times(aws: Aws, admin: Any) -> None:
    # Given an image project and an uploaded PNG
    project_id = _project(admin, ["image"])
    body = _upload(aws, f"projects/{project_id}/shapes/circle 1.png", b"\x89PNG fake")
    # When the same S3 event is processed three times
    outcomes = [ingest.process_message(body, f"m{i}", _forever)[0].kind for i in range(3)]
    # Then exactly one task exists, and the key was URL-decoded
    assert outcomes == ["task_created", "duplicate", "duplicate"]
    assert _task_count(project_id) == 1
    from serval.adapters.tasks import TaskFilter
    from serval.logic import tasks

    page, _ = tasks.list_page(project_id, TaskFilter(), 10, None)
    assert [t.data["image"].key for t in page] == [f"projects/{project_id}/shapes/circle 1.png"]  # type: ignore[union-attr]


def test_manifest_with_broken_lines_imports_good_lines_and_reports_the_rest(aws: Aws, admin: Any) -> None:
    # Given a text project and a manifest with 3 good and 2 broken lines
    project_id = _project(admin, ["text"])
    lines = [
        json.dumps({"data": {"text": "hello"}, "tags": ["x"]}),
        "{not json",
        json.dumps({"source": "inline ground truth style"}),
        json.dumps({"data": {"image": "../../other/secret.png"}}),
        json.dumps({"data": {"text": "third"}, "priority": 5}),
    ]
    body = _upload(aws, f"projects/{project_id}/m.jsonl", "\n".join(lines).encode())
    # When it is ingested
    [outcome] = ingest.process_message(body, "m1", _forever)
    # Then the good lines became tasks and the broken ones are in the error report
    assert outcome.kind == "import_completed"
    assert outcome.detail["tasks_created"] == 3
    assert outcome.detail["errors"] == 2
    from serval.logic import imports

    record, url = imports.get_with_report(project_id, outcome.detail["import_id"])
    assert record.status == "completed_with_errors"
    assert record.lines_total == 5
    assert url is not None
    report = (
        aws.s3.get_object(Bucket=aws.env["DATA_BUCKET"], Key=record.error_report_key)["Body"].read().decode()
    )
    assert [json.loads(r)["line"] for r in report.splitlines()] == [2, 4]
    assert _task_count(project_id) == 3


def _report_lines(aws: Aws, project_id: str, import_id: str) -> dict[int, str]:
    from serval.logic import imports

    record, _ = imports.get_with_report(project_id, import_id)
    assert record.error_report_key is not None
    report = aws.s3.get_object(Bucket=aws.env["DATA_BUCKET"], Key=record.error_report_key)["Body"].read()
    return {r["line"]: r["error"] for r in map(json.loads, report.decode().splitlines())}


def test_a_line_of_invalid_utf8_is_one_line_error_and_the_rest_import(aws: Aws, admin: Any) -> None:
    # Given a JSONL manifest of 14 lines: 8 good, 5 broken in ordinary ways, 1 not UTF-8
    project_id = _project(admin, ["text"])
    good = [json.dumps({"data": {"text": f"good {i}"}}).encode() for i in range(8)]
    broken = [b"{oops", b"[]", b'{"data": 1}', b'{"source": ""}', b'{"nothing": 1}']
    lines = [*good[:4], b'{"source": "caf\xe9 au lait"}', *broken, *good[4:]]
    body = _upload(aws, f"projects/{project_id}/mixed.jsonl", b"\n".join(lines))

    # When it is ingested
    [outcome] = ingest.process_message(body, "m1", _forever)

    # Then the 8 good lines are tasks and the 6 others, line 5 among them, are reported
    assert outcome.kind == "import_completed"
    assert (outcome.detail["tasks_created"], outcome.detail["errors"]) == (8, 6)
    report = _report_lines(aws, project_id, outcome.detail["import_id"])
    assert sorted(report) == [5, 6, 7, 8, 9, 10]
    assert "not UTF-8" in report[5]
    assert _task_count(project_id) == 8


def test_a_csv_row_of_invalid_utf8_is_one_line_error(aws: Aws, admin: Any) -> None:
    project_id = _project(admin, ["text"])
    body = _upload(aws, f"projects/{project_id}/rows.csv", b"text\nfirst\nsec\xffond\nthird\n")
    [outcome] = ingest.process_message(body, "m1", _forever)
    assert (outcome.detail["tasks_created"], outcome.detail["errors"]) == (2, 1)
    assert list(_report_lines(aws, project_id, outcome.detail["import_id"])) == [3]


def test_references_that_escape_are_line_errors(aws: Aws, admin: Any) -> None:
    # Given an image project, another project, and a manifest referring out of its prefix in
    # every known way, beside one good reference and one inline text ending in ".png"
    project_id = _project(admin, ["image", "text"])
    other = _project(admin, ["image"])
    data, exports = aws.env["DATA_BUCKET"], aws.env["EXPORT_BUCKET"]
    aws.s3.put_object(Bucket=data, Key=f"projects/{other}/secret.png", Body=b"x")
    lines = [
        {"source-ref": f"s3://{data}/projects/{project_id}/../{other}/secret.png"},
        {"source-ref": f"s3://{exports}/audit/{project_id}/a.png"},
        {"source-ref": f"s3://{data}/projects/{project_id}/%2e%2e/{other}/secret.png"},
        {"data": {"image": "../../etc/passwd"}},
        {"data": {"image": f"s3://{data}/projects/{project_id}/ok/../cat.png"}},
        {"data": {"text": "see cat.png"}},
    ]
    body = _upload(aws, f"projects/{project_id}/refs.jsonl", "\n".join(map(json.dumps, lines)).encode())

    # When it is ingested
    [outcome] = ingest.process_message(body, "m1", _forever)

    # Then the four escaping lines are errors; the good reference is stored normalised and
    # the text stays text
    assert (outcome.detail["tasks_created"], outcome.detail["errors"]) == (2, 4)
    assert sorted(_report_lines(aws, project_id, outcome.detail["import_id"])) == [1, 2, 3, 4]
    from serval.adapters.tasks import TaskFilter
    from serval.logic import tasks

    page, _ = tasks.list_page(project_id, TaskFilter(), 10, None)
    data_refs = sorted(json.dumps(t.model_dump(mode="json")["data"], sort_keys=True) for t in page)
    assert any(f'"key": "projects/{project_id}/cat.png"' in d for d in data_refs)
    assert any('"text": "see cat.png"' in d for d in data_refs)


def test_thousand_line_manifest_makes_exactly_thousand_tasks_with_batched_writes(
    aws: Aws, admin: Any
) -> None:
    # Given a 1,000-line manifest
    project_id = _project(admin, ["text"])
    manifest = "\n".join(json.dumps({"data": {"text": f"line {i}"}}) for i in range(1000))
    body = _upload(aws, f"projects/{project_id}/big.jsonl", manifest.encode())
    # When it is ingested
    with metered() as calls:
        first = ingest.process_message(body, "m1", _forever)[0]
    # Then there are exactly 1,000 tasks, written in 40 BatchWriteItem calls of 25, plus the
    # import's opening (with its one range's lease), two checkpoints (every 500 tasks) and its
    # completion (the range's and the import's, together)
    assert first.detail["tasks_created"] == 1000
    assert calls.count("BatchWriteItem") == 40
    assert calls.count("TransactWriteItems") == 4
    assert calls.count("dynamodb:GetItem") == 1  # the project
    assert calls.count("s3:GetObject") == 1  # streamed once
    assert calls.count("s3:HeadObject") == 1  # its size, and who uploaded it (its signed metadata)
    assert calls.total == 40 + 4 + 1 + 1 + 1
    # When the same event is delivered again
    with metered() as calls:
        second = ingest.process_message(body, "m2", _forever)[0]
    # Then nothing is written: a failed claim and a read of the finished import
    assert second.kind == "duplicate"
    assert calls.count("BatchWriteItem") == 0
    assert _task_count(project_id) == 1000


def test_csv_manifest_lines_become_tasks(aws: Aws, admin: Any) -> None:
    project_id = _project(admin, ["image", "text"])
    csv_text = "image,tags,priority,caption\nimgs/a.png,red;big,3,first\nimgs/b.png,,x,second\n,,,\n"
    body = _upload(aws, f"projects/{project_id}/m.csv", csv_text.encode())
    [outcome] = ingest.process_message(body, "m1", _forever)
    assert outcome.detail["tasks_created"] == 1
    assert outcome.detail["errors"] == 1


def test_external_ids_never_duplicate_across_manifests(aws: Aws, admin: Any) -> None:
    project_id = _project(admin, ["text"])
    first = "\n".join(json.dumps({"external_id": f"doc-{i}", "data": {"text": f"v1 {i}"}}) for i in range(10))
    second = "\n".join(
        json.dumps({"external_id": f"doc-{i}", "data": {"text": f"v2 {i}"}}) for i in range(5, 15)
    )
    ingest.process_message(_upload(aws, f"projects/{project_id}/a.jsonl", first.encode()), "m1", _forever)
    [outcome] = ingest.process_message(
        _upload(aws, f"projects/{project_id}/b.jsonl", second.encode()), "m2", _forever
    )
    assert outcome.detail["tasks_created"] == 5
    assert outcome.detail["duplicates"] == 5
    assert _task_count(project_id) == 15


def test_an_external_id_repeated_within_one_manifest_is_one_task_and_one_duplicate(
    aws: Aws, admin: Any
) -> None:
    # Given a manifest naming the same external id on two lines of the same write batch
    project_id = _project(admin, ["text"])
    lines = [
        {"external_id": "doc-1", "data": {"text": "first"}},
        {"external_id": "doc-1", "data": {"text": "again"}},
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()

    # When it is ingested
    [outcome] = ingest.process_message(
        _upload(aws, f"projects/{project_id}/twice.jsonl", body), "m1", _forever
    )

    # Then the first line made the task and the second is counted as a duplicate, not an error
    assert (outcome.detail["tasks_created"], outcome.detail["duplicates"]) == (1, 1)
    assert _task_count(project_id) == 1


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("projects/p_missing/a.png", "does not exist"),
        ("elsewhere/a.png", "not under projects/"),
    ],
)
def test_poison_records_go_to_the_dlq_with_a_reason(aws: Aws, admin: Any, key: str, reason: str) -> None:
    body = _upload(aws, key, b"x")
    [outcome] = ingest.process_message(body, "m1", _forever)
    assert outcome.kind == "poison"
    messages = aws.sqs.receive_message(QueueUrl=aws.env["INGEST_DLQ_URL"], MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert reason in messages[0]["MessageAttributes"]["error-reason"]["StringValue"]
    assert messages[0]["Body"] == body


def test_import_near_the_deadline_checkpoints_and_continues(aws: Aws, admin: Any) -> None:
    # Given a manifest and an invocation that is about to time out after ~600 lines
    project_id = _project(admin, ["text"])
    manifest = "\n".join(json.dumps({"data": {"text": f"line {i}"}}) for i in range(1200))
    body = _upload(aws, f"projects/{project_id}/big.jsonl", manifest.encode())
    budget = iter([900.0] * 600 + [1.0] * 10_000)
    # When the first invocation runs out of time
    [outcome] = ingest.process_message(body, "m1", lambda: next(budget))
    # Then it sent its range on to the ranges queue, and the continuation finishes the import exactly
    assert outcome.kind == "continue"
    messages = aws.sqs.receive_message(
        QueueUrl=aws.env["INGEST_RANGES_QUEUE_URL"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    continuation = next(m["Body"] for m in messages if "continuation-of" in m.get("MessageAttributes", {}))
    done = ingest.process_range_message(continuation, "m2", _forever)
    assert done.kind == "import_completed"
    assert done.detail["tasks_created"] == 1200
    assert _task_count(project_id) == 1200


def test_a_second_worker_cannot_take_a_live_range_and_resumes_an_abandoned_one(aws: Aws, admin: Any) -> None:
    # Given a range of an import claimed by a first worker
    from serval.adapters import import_ranges
    from serval.domain.actor import Actor
    from serval.domain.byte_ranges import ByteRange
    from serval.errors import ImportBusy

    project_id = _project(admin, ["text"])
    worker = Actor.system("ingest")
    piece = ByteRange(0, 0, 100)
    opened = import_ranges.open_import(
        project_id, "imp_x", "b", "k", worker, 2, 100, piece, lease_seconds=600
    )
    first = opened.claim
    assert opened.created and first is not None and not first.resumed
    # When a second worker tries while the lease is live
    # Then it is told the range is busy (its message is retried later)
    with pytest.raises(ImportBusy):
        import_ranges.claim(project_id, "imp_x", piece, lease_seconds=600)
    # When the first worker's lease has lapsed (it crashed)
    import_ranges.release(first)
    second = import_ranges.claim(project_id, "imp_x", piece, lease_seconds=600)
    # Then the second worker resumes it, and the first can no longer checkpoint or complete it
    assert second is not None and second.resumed
    with pytest.raises(ImportBusy):
        import_ranges.checkpoint(first, 10, 10, 0, {"new": 10}, lease_seconds=600)
    with pytest.raises(ImportBusy):
        import_ranges.complete(first, lines=1, parsed=1, errors=0, error_part_key=None)
    # And once the second completes it, the range is never claimed again
    import_ranges.complete(second, lines=1, parsed=1, errors=0, error_part_key=None)
    assert import_ranges.claim(project_id, "imp_x", piece, lease_seconds=600) is None
    assert import_ranges.state(project_id, "imp_x").ranges_done == 1
    assert _task_count(project_id) == 0


def test_concurrent_deliveries_of_one_manifest_create_each_task_once(aws: Aws, admin: Any) -> None:
    # Given one manifest whose event is delivered to four workers at the same time
    import threading

    from serval.errors import ImportBusy

    project_id = _project(admin, ["text"])
    manifest = "\n".join(json.dumps({"data": {"text": f"line {i}"}}) for i in range(300))
    body = _upload(aws, f"projects/{project_id}/m.jsonl", manifest.encode())
    kinds: list[str] = []
    barrier = threading.Barrier(4)

    def deliver(n: int) -> None:
        barrier.wait()
        try:
            kinds.append(ingest.process_message(body, f"m{n}", _forever)[0].kind)
        except ImportBusy:
            kinds.append("busy")

    # (with the local stack's moto patches: in-process moto's transactions are not atomic, so
    # a losing claim could read the winner's import before it exists and wreck its lease)
    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    with patches.installed():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Then exactly one import ran; the others were duplicates or busy (and would be retried)
    assert kinds.count("import_completed") == 1
    assert set(kinds) <= {"import_completed", "duplicate", "busy"}
    assert _task_count(project_id) == 300
