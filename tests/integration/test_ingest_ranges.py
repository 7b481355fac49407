"""Large manifests in byte ranges, against moto: the same tasks, counts and error report as in
one piece, however the manifest is split, redelivered or processed concurrently.

Each test imports one manifest twice in the same project: first in one piece, then (after
wiping what the import wrote) split into ranges by a tiny ``INGEST_RANGE_BYTES``, and
compares every item, the import's counts and its error report.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest

from infra.local import patches
from serval import keys
from serval.adapters import dynamo, storage
from serval.domain import byte_ranges, events
from serval.domain.label_config import LabelConfig
from serval.domain.media import MediaType
from serval.domain.models import ProjectCreate
from serval.errors import ImportBusy
from serval.logic import imports, ingest, projects
from tests.integration.conftest import Aws
from tests.integration.streams import StreamReader

TIME_DEPENDENT = {"created_at", "updated_at", "GSI1SK", "GSI2SK"}  # the rest must be equal


def _forever() -> float:
    return 900.0


def _project(admin: Any, media_types: list[str]) -> str:
    config = LabelConfig.model_validate(
        {"controls": [{"name": "label", "type": "classification", "classes": [{"name": "a"}, {"name": "b"}]}]}
    )
    request = ProjectCreate(name="p", media_types=[MediaType(m) for m in media_types], label_config=config)
    return projects.create(request, admin).project_id


def _upload(aws: Aws, key: str, body: bytes) -> str:
    bucket = aws.env["DATA_BUCKET"]
    aws.s3.put_object(Bucket=bucket, Key=key, Body=body)
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    record = {
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "uploader"},
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "eTag": head["ETag"].strip('"'),
                "versionId": head.get("VersionId"),
                "size": head["ContentLength"],
            },
        },
    }
    return json.dumps({"Records": [record]})


def _partition(aws: Aws, project_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "TableName": aws.env["TASKS_TABLE"],
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": keys.project_pk(project_id)}},
    }
    while True:
        page = aws.ddb.query(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _written(aws: Aws, project_id: str) -> dict[str, dict[str, Any]]:
    """Every task and tag link the import wrote, by key, without its time-dependent attributes."""
    return {
        item["SK"]["S"]: {k: v for k, v in item.items() if k not in TIME_DEPENDENT}
        for item in _partition(aws, project_id)
        if item["SK"]["S"].startswith(("TASK#", "TAG#"))
    }


def _wipe(aws: Aws, project_id: str, import_id: str) -> None:
    """Forget the first import: its tasks, tag links, counters, records and report."""
    for item in _partition(aws, project_id):
        sk = item["SK"]["S"]
        if sk != keys.PROJECT_SK and not sk.startswith(keys.MEMBER_SK_PREFIX):
            aws.ddb.delete_item(TableName=aws.env["TASKS_TABLE"], Key={"PK": item["PK"], "SK": item["SK"]})
    bucket = aws.env["DATA_BUCKET"]
    prefix = f"reports/{project_id}/imports/{import_id}/"
    for obj in aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        aws.s3.delete_object(Bucket=bucket, Key=obj["Key"])


def _report(aws: Aws, project_id: str, import_id: str) -> list[dict[str, Any]]:
    record, _ = imports.get_with_report(project_id, import_id)
    if record.error_report_key is None:
        return []
    body = aws.s3.get_object(Bucket=aws.env["DATA_BUCKET"], Key=record.error_report_key)["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines()]


def _outcome_of_import(aws: Aws, project_id: str, import_id: str) -> dict[str, Any]:
    record, _ = imports.get_with_report(project_id, import_id)
    counts = {
        k: getattr(record, k) for k in ("status", "lines_total", "tasks_created", "duplicates", "errors")
    }
    return {
        "record": counts,
        "written": _written(aws, project_id),
        "report": _report(aws, project_id, import_id),
        "counters": dynamo.read_counters(project_id),
    }


def _drain(aws: Aws) -> list[str]:
    """Every message waiting on the ranges queue (received and deleted)."""
    url, bodies = aws.env["INGEST_RANGES_QUEUE_URL"], []
    while True:
        messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _in_one_piece(aws: Aws, monkeypatch: pytest.MonkeyPatch, project_id: str, body: str) -> dict[str, Any]:
    monkeypatch.setenv("INGEST_RANGE_BYTES", str(1 << 30))
    [outcome] = ingest.process_message(body, "whole", _forever)
    assert outcome.kind == "import_completed", outcome
    import_id = outcome.detail["import_id"]
    expected = _outcome_of_import(aws, project_id, import_id)
    _wipe(aws, project_id, import_id)
    return expected


def _split(monkeypatch: pytest.MonkeyPatch, body: str, range_bytes: int) -> ingest.Outcome:
    monkeypatch.setenv("INGEST_RANGE_BYTES", str(range_bytes))
    [outcome] = ingest.process_message(body, "split", _forever)
    assert outcome.kind == "import_split", outcome
    return outcome


JSONL_LINES: list[bytes] = [
    json.dumps({"data": {"text": "the first review"}, "tags": ["a", "b"], "priority": 3}).encode(),
    b"",
    json.dumps({"source": "ground truth style, " + "long " * 12}).encode(),
    b"{not json",
    json.dumps({"external_id": "doc-1", "data": {"text": "named once"}}).encode(),
    b"   ",
    json.dumps({"data": {"image": "../../other/secret.png"}}).encode(),
    json.dumps({"data": {"text": "windows line"}}).encode() + b"\r",
    b'{"source": "caf\xe9 au lait"}',
    json.dumps({"data": {"text": "short"}}).encode(),
    *[json.dumps({"data": {"text": f"review number {i}"}, "metadata": {"n": i}}).encode() for i in range(12)],
    json.dumps({"external_id": "doc-1", "data": {"text": "named twice"}}).encode(),
    json.dumps({"data": {"text": "the last line, without a newline"}}).encode(),
]


@pytest.mark.parametrize("range_bytes", [37, 64, 101])
def test_a_split_jsonl_manifest_makes_exactly_the_tasks_counts_and_report_of_one_piece(
    aws: Aws, admin: Any, monkeypatch: pytest.MonkeyPatch, range_bytes: int
) -> None:
    # Given a JSONL manifest with blank, broken, undecodable, CRLF and repeated-id lines, whose
    # lines straddle the range boundaries, imported once in one piece
    project_id = _project(admin, ["text"])
    manifest = b"\n".join(JSONL_LINES)
    body = _upload(aws, f"projects/{project_id}/reviews.jsonl", manifest)
    expected = _in_one_piece(aws, monkeypatch, project_id, body)
    starts = [0, *(i + 1 for i, b in enumerate(manifest) if b == ord("\n"))]
    boundaries = [r.start for r in byte_ranges.nominal(len(manifest), range_bytes)][1:]
    assert any(b not in starts for b in boundaries)  # ranges start inside lines

    # When it is imported again, split into ranges of ``range_bytes``, each its own invocation
    split = _split(monkeypatch, body, range_bytes)
    messages = _drain(aws)
    assert len(messages) == split.detail["ranges"] == -(-len(manifest) // range_bytes)
    kinds = [ingest.process_range_message(m, f"r{i}", _forever).kind for i, m in enumerate(messages)]

    # Then the last range finished the import, and every task, tag link, count, counter and
    # error line (numbered across the manifest) is what the one-piece import made
    assert kinds[:-1] == ["range_done"] * (len(messages) - 1) and kinds[-1] == "import_completed"
    got = _outcome_of_import(aws, project_id, split.detail["import_id"])
    assert got == expected
    assert [e["line"] for e in got["report"]] == [4, 7, 9]
    assert expected["record"]["tasks_created"] == 18 and expected["record"]["duplicates"] == 1


CSV_ROWS = [
    "text,tags,priority,note",
    "plain row,a;b,1,x",
    '"a cell that spans',
    "three physical lines, with a comma",
    'and ends here",c,2,"quoted, note"',
    ",,,",
    "row with a bad priority,d,high,y",
    '"another ""quoted"" cell",e,3,z',
    "short,f,4,w",
    '"multi',
    'line",g,5,v',
    "too,many,fields,in,this,row",
    "the last row,h,6,u",
]


@pytest.mark.parametrize("range_bytes", [20, 45, 90])
def test_a_split_csv_starts_its_ranges_at_records_and_reads_the_header_in_each(
    aws: Aws, admin: Any, monkeypatch: pytest.MonkeyPatch, range_bytes: int
) -> None:
    # Given a CSV whose quoted cells hold line breaks, imported once in one piece
    project_id = _project(admin, ["text"])
    manifest = ("\n".join(CSV_ROWS) + "\n").encode()
    body = _upload(aws, f"projects/{project_id}/rows.csv", manifest)
    expected = _in_one_piece(aws, monkeypatch, project_id, body)

    # When it is imported again in ranges of ``range_bytes``
    split = _split(monkeypatch, body, range_bytes)
    messages = [json.loads(m) for m in _drain(aws)]
    # Then no range starts inside a record: each starts after the header's record or a row's last line
    row_starts = {len(("\n".join(CSV_ROWS[:n]) + "\n").encode()) for n in (1, 2, 5, 6, 7, 8, 9, 11, 12)}
    assert len(messages) == split.detail["ranges"] > 1
    assert all(m["start"] in row_starts for m in messages[1:])
    assert {m["header_end"] for m in messages} == {len(CSV_ROWS[0]) + 1}
    for i, message in enumerate(messages):
        ingest.process_range_message(json.dumps(message), f"r{i}", _forever)
    # And the tasks, counts and report (line numbers of each row's last line) are the one piece's
    got = _outcome_of_import(aws, project_id, split.detail["import_id"])
    assert got == expected
    assert [e["line"] for e in got["report"]] == [7, 12]
    assert expected["record"]["tasks_created"] == 6


def test_a_redelivered_range_creates_nothing_twice_and_the_import_finishes_once(
    aws: Aws, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a split import and its one-piece twin
    project_id = _project(admin, ["text"])
    manifest = b"\n".join(JSONL_LINES)
    body = _upload(aws, f"projects/{project_id}/again.jsonl", manifest)
    expected = _in_one_piece(aws, monkeypatch, project_id, body)
    stream = StreamReader(aws.env["TASKS_TABLE"])
    stream.read()  # the first import's changes
    split = _split(monkeypatch, body, 64)
    messages = _drain(aws)

    # When every range message is delivered twice, a redelivery of the first after the others,
    # and the S3 event itself again
    # (with the local stack's moto patches: a cancelled transaction in plain moto replaces the
    # table with a copy, and a stream reader loses what follows)
    with patches.installed():
        outcomes = [ingest.process_range_message(m, "first", _forever).kind for m in messages]
        redelivered = [ingest.process_range_message(m, "again", _forever).kind for m in messages]
        [event_again] = ingest.process_message(body, "event-again", _forever)

    # Then the redeliveries did nothing (no new range message either), and the result is the one piece's
    assert outcomes[-1] == "import_completed"
    assert set(redelivered) == {"duplicate"} and event_again.kind == "duplicate"
    assert _drain(aws) == []
    assert _outcome_of_import(aws, project_id, split.detail["import_id"]) == expected
    # And the import changed to its final status once, so import.completed is emitted once
    finished = [
        e
        for r in stream.read()
        for e in events.from_change(
            r["eventID"],
            r["eventName"],
            r["dynamodb"].get("OldImage", {}),
            r["dynamodb"].get("NewImage", {}),
            "t",
        )
    ]
    completed = [e for e in finished if e.type == "import.completed"]
    assert len(completed) == 1
    assert completed[0].data["tasks_created"] == expected["record"]["tasks_created"]


def test_ranges_processed_concurrently_by_threads_add_up_exactly(
    aws: Aws, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 600-line manifest split into 6 ranges, and its one-piece twin
    project_id = _project(admin, ["text"])
    lines = [json.dumps({"data": {"text": f"line {i} " + "x" * (i % 17)}}) for i in range(600)]
    lines[123] = "{broken"
    manifest = "\n".join(lines).encode()
    body = _upload(aws, f"projects/{project_id}/wide.jsonl", manifest)
    expected = _in_one_piece(aws, monkeypatch, project_id, body)
    split = _split(monkeypatch, body, -(-len(manifest) // 6))
    messages = _drain(aws)
    assert len(messages) == 6

    # When six workers take the ranges at the same time, and two more race for the first one
    kinds: list[str] = []
    barrier = threading.Barrier(len(messages) + 2)

    def deliver(message: str, n: int) -> None:
        barrier.wait()
        try:
            kinds.append(ingest.process_range_message(message, f"m{n}", _forever).kind)
        except ImportBusy:
            kinds.append("busy")

    work = [*messages, messages[0], messages[0]]
    threads = [threading.Thread(target=deliver, args=(m, n)) for n, m in enumerate(work)]
    with patches.installed():  # in-process moto's transactions are atomic only with these
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for message in messages:  # what a busy worker's message does when SQS redelivers it
            kinds.append(ingest.process_range_message(message, "later", _forever).kind)

    # Then exactly one worker finished the import, and everything adds up to the one piece's
    counted = Counter(kinds)
    assert counted["import_completed"] == 1
    assert set(counted) <= {"range_done", "import_completed", "duplicate", "busy"}
    got = _outcome_of_import(aws, project_id, split.detail["import_id"])
    assert got == expected
    assert got["record"]["tasks_created"] == 599 and [e["line"] for e in got["report"]] == [124]


def test_a_range_that_cannot_read_its_object_fails_the_import_once(
    aws: Aws, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a split import whose manifest version is deleted before its ranges run (a range's
    # GET reads the version its S3 event named)
    project_id = _project(admin, ["text"])
    key = f"projects/{project_id}/gone.jsonl"
    body = _upload(aws, key, b"\n".join(JSONL_LINES))
    split = _split(monkeypatch, body, 128)
    messages = _drain(aws)
    event = json.loads(body)["Records"][0]["s3"]["object"]
    aws.s3.delete_object(Bucket=aws.env["DATA_BUCKET"], Key=key, VersionId=event["versionId"])

    # When its ranges are delivered
    outcomes = [ingest.process_range_message(m, f"r{i}", _forever) for i, m in enumerate(messages)]

    # Then the first failed the import (to the ranges DLQ with the reason) and the others found it closed
    assert outcomes[0].kind == "poison" and "failed in range 0" in outcomes[0].detail["reason"]
    assert {o.kind for o in outcomes[1:]} == {"duplicate"}
    record, _ = imports.get_with_report(project_id, split.detail["import_id"])
    assert record.status == "failed"
    dead = aws.sqs.receive_message(
        QueueUrl=aws.env["INGEST_RANGES_DLQ_URL"], MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert (
        len(dead) == 1 and "no longer exists" in dead[0]["MessageAttributes"]["error-reason"]["StringValue"]
    )


def test_the_range_reader_partitions_lines_for_every_range_size(aws: Aws) -> None:
    # Given an object with blank lines, a CRLF line, a line longer than the reader's limit and
    # no final newline
    bucket, key = aws.env["DATA_BUCKET"], "projects/p/reader.jsonl"
    content = b"alpha\n\nbravo charlie\r\ndelta\n" + b"x" * 70 + b"\necho\n\nfoxtrot"
    aws.s3.put_object(Bucket=bucket, Key=key, Body=content)
    head = aws.s3.head_object(Bucket=bucket, Key=key)

    def read(start: int, end: int) -> list[tuple[int, bytes, bool]]:
        return [
            tuple(line)  # type: ignore[misc]
            for line in storage.iter_range_lines(
                bucket,
                key,
                version_id=head.get("VersionId"),
                etag=head["ETag"].strip('"'),
                start=start,
                end=end,
                size=len(content),
                max_line=40,
            )
        ]

    whole = read(0, len(content))
    # Then in one piece every line comes with its offset, the CR dropped and the long line cut
    assert [offset for offset, _, _ in whole] == [0, 6, 7, 22, 28, 99, 104, 105]
    assert whole[2] == (7, b"bravo charlie", False)
    assert whole[4] == (28, b"x" * 41, True)
    assert whole[-1] == (105, b"foxtrot", False)
    # And however the object is split, each line is read by exactly the range it starts in
    for size in range(1, len(content) + 1):
        pieces = [read(r.start, r.end) for r in byte_ranges.nominal(len(content), size)]
        assert [line for piece in pieces for line in piece] == whole, size
