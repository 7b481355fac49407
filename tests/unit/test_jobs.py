"""Jobs: request validation, the export's row mapping, and the streaming result writer."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from serval.adapters import clients
from serval.adapters.jobs import MIN_PART_BYTES, ResultWriter
from serval.domain.audit import AuditRecord
from serval.domain.jobs import AuditExportCreate, AuditExportFormat, JobStatus, audit_export_key
from serval.errors import ValidationFailed
from serval.logic.audit_export import CSV_COLUMNS, csv_row, jsonl_line
from serval.logic.audit_queries import check_range, time_bound

RECORD = AuditRecord(
    audit_id="aud_1",
    project_id="p1",
    actor_id="u1",
    actor_role="admin",
    action="task.update",
    target_type="task",
    target_id="t1",
    before={"priority": 1, "tags": ["a"]},
    after={"priority": 2, "note": 'comma, "quote"\nand a new line'},
    at="2025-01-02T03:04:05.678Z",
)


def test_csv_row_follows_the_fixed_header_with_json_payloads() -> None:
    row = csv_row(RECORD)
    assert len(row) == len(CSV_COLUMNS)
    by_column = dict(zip(CSV_COLUMNS, row, strict=True))
    assert by_column["audit_id"] == "aud_1"
    assert by_column["before"] == '{"priority":1,"tags":["a"]}'
    assert json.loads(by_column["after"]) == RECORD.after
    assert by_column["counts"] == by_column["request_id"] == by_column["chain_seq"] == ""


def test_csv_rows_survive_a_round_trip_through_the_stdlib_reader() -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(csv_row(RECORD))
    [row] = list(csv.DictReader(io.StringIO(text.getvalue(), newline="")))
    assert json.loads(row["after"]) == RECORD.after
    assert row["at"] == RECORD.at


def test_jsonl_line_is_one_record_per_line() -> None:
    line = jsonl_line(RECORD)
    assert line.endswith("\n") and line.count("\n") == 1
    assert AuditRecord.model_validate_json(line) == RECORD


def test_export_request_needs_an_ordered_range_with_offsets() -> None:
    with pytest.raises(ValidationError):
        AuditExportCreate(since=datetime(2025, 2, 1, tzinfo=UTC), until=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError):
        AuditExportCreate.model_validate({"since": "2025-01-01T00:00:00"})
    with pytest.raises(ValidationError):
        AuditExportCreate.model_validate({"format": "xml"})
    ok = AuditExportCreate.model_validate({"format": "csv", "since": "2025-01-01T00:00:00Z"})
    assert ok.format is AuditExportFormat.CSV
    assert audit_export_key("p1", "job_1", ok.format) == "audit-exports/p1/job_1.csv"


def test_time_bounds_are_utc_with_milliseconds_like_the_sort_keys() -> None:
    moment = datetime(2025, 1, 2, 5, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    assert time_bound(moment) == "2025-01-02T03:04:05.678Z"
    with pytest.raises(ValidationFailed):
        check_range(moment, moment)
    assert check_range(None, moment) == (None, "2025-01-02T03:04:05.678Z")


def test_finished_statuses() -> None:
    assert [s for s in JobStatus if s.finished] == [JobStatus.SUCCEEDED, JobStatus.FAILED]


class FakeS3:
    """Records the calls a ResultWriter makes, and the largest body it sent at once."""

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.put: bytes | None = None
        self.completed: list[dict[str, Any]] | None = None
        self.aborted = False

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "up-1"}

    def upload_part(self, PartNumber: int, Body: bytes, **_: Any) -> dict[str, Any]:
        self.parts[PartNumber] = Body
        return {"ETag": f'"e{PartNumber}"'}

    def complete_multipart_upload(self, MultipartUpload: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.completed = MultipartUpload["Parts"]
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.aborted = True
        return {}

    def put_object(self, Body: bytes, **_: Any) -> dict[str, Any]:
        self.put = Body
        return {}


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    fake = FakeS3()
    clients.override("s3", fake)
    yield fake
    clients.reset()


def test_writer_uploads_full_parts_then_a_short_last_one(s3: FakeS3) -> None:
    # Given a writer fed 12.5 MiB in 100 KiB chunks
    writer = ResultWriter("b", "k", "text/csv", part_size=MIN_PART_BYTES)
    chunk = b"x" * (100 * 1024)
    for _ in range(128):
        writer.write(chunk)
        assert len(writer._buffer) < MIN_PART_BYTES  # never more than one part in memory
    writer.close()
    # Then the parts are 5 MiB, 5 MiB and the rest, completed in order
    sizes = [len(s3.parts[n]) for n in sorted(s3.parts)]
    assert sizes == [MIN_PART_BYTES, MIN_PART_BYTES, 128 * 100 * 1024 - 2 * MIN_PART_BYTES]
    assert s3.completed == [
        {"ETag": '"e1"', "PartNumber": 1},
        {"ETag": '"e2"', "PartNumber": 2},
        {"ETag": '"e3"', "PartNumber": 3},
    ]
    assert writer.bytes_written == 128 * 100 * 1024


def test_writer_puts_a_small_result_in_one_request(s3: FakeS3) -> None:
    writer = ResultWriter("b", "k", "application/x-ndjson", part_size=MIN_PART_BYTES)
    writer.write(b"{}\n")
    writer.close()
    assert (s3.put, s3.parts, s3.completed) == (b"{}\n", {}, None)


def test_writer_aborts_its_upload(s3: FakeS3) -> None:
    writer = ResultWriter("b", "k", "text/csv", part_size=MIN_PART_BYTES)
    writer.write(b"x" * (MIN_PART_BYTES + 1))
    writer.abort()
    assert s3.aborted and s3.completed is None


def test_parts_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        ResultWriter("b", "k", "text/csv", part_size=1024)


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Query")


@pytest.mark.parametrize(
    ("exc", "mendable"),
    [
        (ConnectionError("network down"), True),
        (TimeoutError(), True),
        (_client_error("ThrottlingException", 400), True),
        (_client_error("ProvisionedThroughputExceededException", 400), True),
        (_client_error("InternalServerError", 500), True),
        (_client_error("SlowDown", 503), True),
        (_client_error("ValidationException", 400), False),
        (_client_error("AccessDeniedException", 403), False),
        (KeyError("square"), False),
        (ValueError("bad data"), False),
        (TypeError("a bug"), False),
    ],
)
def test_only_errors_a_retry_may_mend_are_retried(exc: Exception, mendable: bool) -> None:
    # Given an error a job's runner raised on its first attempt
    from serval.logic.jobs import MAX_ATTEMPTS, give_up_reason

    # When the worker decides what to do with it
    first, last = give_up_reason(exc, 1), give_up_reason(exc, MAX_ATTEMPTS)
    # Then a mendable error is retried until the last attempt, any other fails the job at once
    if mendable:
        assert first is None
        assert last == f"gave up after {MAX_ATTEMPTS} attempts: {type(exc).__name__}"
    else:
        assert first == last
        assert first is not None and first.startswith("failed with an error that a retry cannot fix: ")


def test_an_error_wrapping_a_throttled_call_is_retried() -> None:
    # Given a library error raised while handling a throttled AWS call
    from serval.logic.jobs import give_up_reason

    try:
        try:
            raise _client_error("ThrottlingException", 400)
        except Exception as inner:
            raise RuntimeError("the write failed") from inner
    except RuntimeError as wrapped:
        # Then its cause decides: it is retried
        assert give_up_reason(wrapped, 1) is None
