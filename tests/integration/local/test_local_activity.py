"""The local console's activity lines: one per API request, and per pipeline step from the tasks
table's changes (stream records as GetRecords returns them), per-task steps summed up."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from infra.local.activity import Activity, ApiRequest

_serialize = TypeSerializer().serialize
_ids = itertools.count(1)


def _image(attributes: dict[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in attributes.items()}


def _record(
    kind: str, new: dict[str, Any] | None = None, old: dict[str, Any] | None = None
) -> dict[str, Any]:
    n = next(_ids)
    change: dict[str, Any] = {"SequenceNumber": str(n)}
    if new is not None:
        change["NewImage"] = _image(new)
    if old is not None:
        change["OldImage"] = _image(old)
    return {"eventID": f"e{n}", "eventName": kind, "dynamodb": change}


def _task(task_id: str, **attributes: Any) -> dict[str, Any]:
    return {"entity": "task", "project_id": "p_1", "task_id": task_id, "status": "new", **attributes}


def _manifest_task(i: int) -> dict[str, Any]:
    source = {"bucket": "data", "key": "projects/p_1/reviews.jsonl", "line": i}
    return _task(f"t_{i}", import_id="imp_1", source=json.dumps(source))


def _import(status: str, **counts: int) -> dict[str, Any]:
    return {
        "entity": "import",
        "project_id": "p_1",
        "import_id": "imp_1",
        "source": "manifest",
        "key": "projects/p_1/reviews.jsonl",
        "status": status,
        "created_at": "2026-12-01T10:00:00.000Z",
        "completed_at": "2026-12-01T10:00:02.100Z",
        **counts,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_request_is_one_line_with_its_status_time_and_caller() -> None:
    said: list[str] = []
    activity = Activity(said.append)
    activity.request(ApiRequest("POST", "/projects/p_1/next", 200, 12.4, "annotator@serval.local"))
    activity.request(ApiRequest("GET", "/projects?limit=5", 401, 1.0, None))
    assert said == [
        "POST /projects/p_1/next 200 12 ms annotator@serval.local",
        "GET /projects?limit=5 401 1 ms -",
    ]


def test_a_large_import_says_one_line_when_it_completes_and_how_far_it_got_now_and_then() -> None:
    # Given a 50,000-line manifest whose tasks arrive in polls of 1,000 records over 25 s
    said: list[str] = []
    clock = Clock()
    activity = Activity(said.append, progress_s=10.0, clock=clock)
    for batch in range(50):
        records = [_record("INSERT", _manifest_task(i)) for i in range(batch * 1000, (batch + 1) * 1000)]
        activity.changes("tasks", records)
        clock.now += 0.5
        activity.flush()
    # Then no task had a line of its own: a progress line every 10 s at most
    assert said == [
        "ingest: 20,000 tasks so far from reviews.jsonl",
        "ingest: 40,000 tasks so far from reviews.jsonl",
    ]

    # When the import completes with duplicates and broken lines
    running = _import("running")
    activity.changes(
        "tasks",
        [_record("MODIFY", _import("completed", tasks_created=50_000, duplicates=3, errors=2), running)],
    )
    activity.flush()
    # Then one line says what it made, from which file, in how long
    assert said[-1] == "ingest: 50,000 tasks from reviews.jsonl in 2.1 s (3 duplicates, 2 line errors)"
    # And nothing more is said about it
    clock.now += 60
    activity.flush()
    assert len(said) == 3


def test_a_failed_import_and_uploaded_files_are_said_and_api_creates_left_to_their_request() -> None:
    said: list[str] = []
    activity = Activity(said.append)
    # Given 36 uploaded images and 5 tasks created through the API (with their API import)
    uploads = [
        _record(
            "INSERT", _task(f"t_{i}", source=json.dumps({"bucket": "data", "key": f"projects/p_1/{i}.png"}))
        )
        for i in range(36)
    ]
    api = [
        _record("INSERT", _task(f"t_api{i}", import_id="imp_api", source=json.dumps({"line": i})))
        for i in range(5)
    ]
    api_import = _import("completed", tasks_created=5) | {"import_id": "imp_api", "source": "api"}
    finished = [_record("MODIFY", api_import, _import("running") | {"import_id": "imp_api", "source": "api"})]
    # And a manifest import that failed
    failed = [_record("MODIFY", _import("failed", tasks_created=0), _import("running"))]
    activity.changes("tasks", uploads + api + finished + failed)
    activity.flush()
    # Then the uploads are one line, the failure another, and the API's tasks none
    assert said == [
        "ingest: 36 tasks from uploaded files",
        "ingest: import of reviews.jsonl failed after 2.1 s (0 tasks)",
    ]


def test_the_workflows_steps_are_summed_up_per_flush() -> None:
    said: list[str] = []
    activity = Activity(said.append)
    # Given 40 executions started, 2 tasks exported, 1 escalated and 1 wait taken over by a new execution
    started = [
        _record("MODIFY", _task(f"t_{i}", execution_started_at="2026-12-01T10:00:00.000Z"), _task(f"t_{i}"))
        for i in range(40)
    ]
    done = [
        _record("MODIFY", _task(f"t_{i}", status="exported"), _task(f"t_{i}", status="approved"))
        for i in range(2)
    ]
    escalated = [_record("MODIFY", _task("t_9", escalated_at="x"), _task("t_9"))]
    resumed = [
        _record(
            "MODIFY",
            _task("t_8", label_token="new", status="queued"),
            _task("t_8", label_token="old", status="queued"),
        )
    ]
    queued = [
        _record("MODIFY", _task("t_7", label_token="first", status="queued"), _task("t_7"))
    ]  # a first wait
    activity.changes("tasks", started + done + escalated + resumed + queued)
    # And changes of another table, which say nothing
    activity.changes("audit", started)
    activity.flush()
    activity.flush()
    # Then one line says it all, once
    assert said == [
        "workflow: 40 executions started, 1 execution resumed, 2 tasks completed, 1 task escalated"
    ]


def test_a_finished_job_is_one_line_with_its_format_counts_and_time() -> None:
    said: list[str] = []
    activity = Activity(said.append)

    def job(kind: str, status: str, params: dict[str, Any], done: int, failed: int = 0) -> dict[str, Any]:
        return {
            "entity": "job",
            "project_id": "p_1",
            "job_id": f"j_{kind}",
            "kind": kind,
            "status": status,
            "params": json.dumps(params),
            "done": done,
            "failed": failed,
            "created_at": "2026-12-01T10:00:00.000Z",
            "finished_at": "2026-12-01T10:00:03.200Z",
        }

    def finished(new: dict[str, Any]) -> dict[str, Any]:
        return _record("MODIFY", new, new | {"status": "running"})

    activity.changes(
        "tasks",
        [
            finished(job("dataset_export", "succeeded", {"format": "jsonl"}, 1000)),
            finished(job("bulk", "failed", {"operation": "archive"}, 8, 2)),
            finished(job("audit_export", "succeeded", {"format": "csv"}, 12)),
        ],
    )
    activity.flush()
    assert said == [
        "export: job j_dataset_export done (jsonl, 1,000 tasks) in 3.2 s",
        "bulk: job j_bulk failed (archive, 8 tasks, 2 failed) in 3.2 s",
        "audit export: job j_audit_export done (csv, 12 records) in 3.2 s",
    ]


def test_a_start_can_wait_until_the_re_created_executions_took_their_waits_over() -> None:
    # Given two resume requests on their way, and a console that counts the waits taken over
    activity = Activity(lambda _: None)

    def taken_over(task_id: str) -> dict[str, Any]:
        return _record("MODIFY", _task(task_id, label_token="new"), _task(task_id, label_token="old"))

    # When one wait was taken over, Then waiting for two times out
    activity.changes("tasks", [taken_over("t_1")])
    assert activity.wait_resumed(2, timeout_s=0.2) is False
    # When the other one is taken over from another thread, Then the wait ends
    feeder = threading.Timer(0.1, activity.changes, args=("tasks", [taken_over("t_2")]))
    feeder.start()
    assert activity.wait_resumed(2, timeout_s=30) is True
    feeder.join()
