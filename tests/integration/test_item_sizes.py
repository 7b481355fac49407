"""Items and transactions against DynamoDB's size limits (moto with AWS's limits enforced).

Non-ASCII text is stored as UTF-8; oversize tasks, label configurations and annotations are
refused with specific 422s (or line errors in a manifest import); what DynamoDB itself
refuses is a per-task failure, never a stuck import; transactions split by size.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from serval import keys
from serval.adapters import dynamo, mapping, tasks
from serval.domain import limits, manifest
from serval.domain.actor import Actor
from serval.domain.media import MediaType
from serval.domain.models import TaskCreate, TaskSource, new_task
from serval.logic import imports, ingest
from tests.integration.api_client import call
from tests.integration.conftest import Aws

EMOJI = "\U0001f600"  # 4 bytes of UTF-8; 12 bytes as a JSON "\ud83d\ude00" escape
TEXT_LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]},
        {"name": "entities", "type": "ner", "classes": [{"name": "person"}]},
    ]
}


def _project(actor: Actor, label_config: dict[str, Any] | None = None) -> str:
    response = call(
        "POST",
        "/projects",
        actor,
        {"name": "Sizes", "media_types": ["text"], "label_config": label_config or TEXT_LABELS},
    )
    assert response.status == 201, response.body
    return str(response.body["project_id"])


def _count(project_id: str) -> int:
    return sum(dynamo.read_counters(project_id).values())


def _listed(project_id: str, actor: Actor) -> int:
    return len(call("GET", f"/projects/{project_id}/tasks?limit=100", actor).body["items"])


def _upload_manifest(aws: Aws, project_id: str, lines: list[str]) -> str:
    bucket, key = aws.env["DATA_BUCKET"], f"projects/{project_id}/big.jsonl"
    aws.s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key, "eTag": head["ETag"].strip('"'), "size": 1},
        },
    }
    return json.dumps({"Records": [record]})


def _report(aws: Aws, key: str | None) -> list[dict[str, Any]]:
    assert key is not None
    body = aws.s3.get_object(Bucket=aws.env["DATA_BUCKET"], Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_non_ascii_text_is_stored_as_utf8_not_as_escapes(aws: Aws, admin: Actor) -> None:
    # Given a task whose inline text is 10,000 emoji (40,000 bytes of UTF-8)
    project_id = _project(admin)
    text = EMOJI * 10_000
    created = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": text}}])
    assert created.status == 201, created.body
    [task_id] = created.body["task_ids"]

    # When its item is read as DynamoDB stores it
    raw = aws.ddb.get_item(
        TableName=aws.env["TASKS_TABLE"],
        Key={keys.PK: {"S": keys.project_pk(project_id)}, keys.SK: {"S": keys.task_sk(task_id)}},
    )["Item"]

    # Then the text is stored as its UTF-8 (not 120,000 bytes of \\u escapes)
    assert EMOJI in raw["data"]["S"]
    assert dynamo.item_size(raw) < 40_000 + 2_000
    # And it reads back unchanged
    assert call("GET", f"/projects/{project_id}/tasks/{task_id}", admin).body["data"]["text"]["text"] == text


def test_a_manifest_line_too_large_to_store_is_a_line_error_and_the_import_completes(
    aws: Aws, admin: Actor
) -> None:
    # Given a manifest: two good lines, a 150 KB line of escaped emoji that fits once stored as
    # UTF-8 (50 KB), a line of three 60 KB texts (180 KB stored: over the task limit), a good line
    project_id = _project(admin)
    fits = json.dumps({"data": {"text": EMOJI * 12_500}})  # ensure_ascii: 12 bytes per emoji
    too_big = json.dumps({"data": {k: EMOJI * 15_000 for k in ("text", "a", "b")}}, ensure_ascii=False)
    lines = [json.dumps({"data": {"text": "one"}}), json.dumps({"data": {"text": "two"}}), fits, too_big]
    lines.append(json.dumps({"data": {"text": "five"}}))
    assert len(fits) > 150_000

    # When it is ingested
    [outcome] = ingest.process_message(_upload_manifest(aws, project_id, lines), "m1", lambda: 900.0)

    # Then the import completed with the oversize line in its error report
    assert outcome.kind == "import_completed"
    record, _ = imports.get_with_report(project_id, outcome.detail["import_id"])
    assert (record.status, record.lines_total, record.tasks_created, record.errors) == (
        "completed_with_errors",
        5,
        4,
        1,
    )
    [error] = _report(aws, record.error_report_key)
    assert error["line"] == 4 and "bytes stored" in error["error"]
    # And the counters agree with the tasks listed
    assert _count(project_id) == _listed(project_id, admin) == 4


def test_tasks_dynamodb_refuses_are_line_errors_and_everything_written_is_counted(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Serval's own size checks out of the way, so DynamoDB itself refuses the items
    monkeypatch.setattr(limits, "MAX_TASK_BYTES", 10 << 20)
    monkeypatch.setattr(limits, "MAX_ITEM_BYTES", 10 << 20)
    monkeypatch.setattr(manifest, "MAX_LINE_BYTES", 10 << 20)
    project_id = _project(admin)
    huge = {k: EMOJI * 24_000 for k in ("text", "a", "b", "c", "d")}  # ~480 KB stored
    lines = [json.dumps({"data": {"text": f"good {i}"}}) for i in range(30)]
    lines[3] = json.dumps({"data": huge}, ensure_ascii=False)  # a positional line, in a BatchWriteItem chunk
    lines[27] = json.dumps(
        {"data": huge, "external_id": "big"}, ensure_ascii=False
    )  # a conditional line, in a transaction
    lines[28] = json.dumps({"data": {"text": "kept"}, "external_id": "small"})

    # When the manifest is ingested
    [outcome] = ingest.process_message(_upload_manifest(aws, project_id, lines), "m1", lambda: 900.0)

    # Then the import completed; each refused line is a line error; the rest are tasks
    assert outcome.kind == "import_completed"
    record, _ = imports.get_with_report(project_id, outcome.detail["import_id"])
    assert (record.status, record.lines_total, record.tasks_created, record.errors) == (
        "completed_with_errors",
        30,
        28,
        2,
    )
    assert sorted(e["line"] for e in _report(aws, record.error_report_key)) == [4, 28]
    # And every task written is counted, none twice
    assert _count(project_id) == _listed(project_id, admin) == 28


def test_bulk_create_of_an_oversize_task_is_a_422_and_creates_nothing(aws: Aws, admin: Actor) -> None:
    # Given a task of three 60 KB texts (180 KB stored)
    project_id = _project(admin)
    big = {"data": {k: EMOJI * 15_000 for k in ("text", "a", "b")}}

    # When it is posted with a small one
    response = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "ok"}}, big])

    # Then the call is refused with item_too_large naming the task, and nothing was created
    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "item_too_large"
    [problem] = response.body["error"]["details"]
    assert problem["index"] == 1 and problem["bytes"] > limits.MAX_TASK_BYTES
    assert _count(project_id) == _listed(project_id, admin) == 0
    assert call("GET", f"/projects/{project_id}/imports", admin).body["items"] == []


def test_an_annotation_with_a_very_long_span_text_is_a_422(aws: Aws, admin: Actor) -> None:
    # Given a text task, annotated by its manager (who may write outside the queue)
    project_id = _project(admin)
    [task_id] = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "Ada"}}]).body[
        "task_ids"
    ]
    url = f"/projects/{project_id}/tasks/{task_id}/annotations"
    span = {"label": "person", "start": 0, "end": 3, "text": EMOJI * 30_000}  # 120 KB stored

    # When it is annotated with a span whose text is over the annotation limit
    response = call(
        "POST", url, admin, {"results": [{"control": "entities", "type": "ner", "spans": [span]}]}
    )

    # Then it is refused with annotation_too_large, and nothing was stored
    assert response.status == 422, response.body
    assert response.body["error"]["code"] == "annotation_too_large"
    assert call("GET", url, admin).body["items"] == []
    # And too many regions are refused the same way
    spans = [{"label": "person", "start": 0, "end": 1}] * (limits.MAX_REGIONS + 1)
    many = call("POST", url, admin, {"results": [{"control": "entities", "type": "ner", "spans": spans}]})
    assert (many.status, many.body["error"]["code"]) == (422, "annotation_too_large")


def _classes(n: int, name_length: int = 60, controls: int = 1) -> dict[str, Any]:
    classes = [{"name": f"c{i:05d}".ljust(name_length, "x"), "color": "#a0b0c0"} for i in range(n)]
    return {
        "controls": [
            {"name": f"label{c}", "type": "classification", "classes": classes} for c in range(controls)
        ]
    }


def test_a_3000_class_label_configuration_is_a_422_at_create_and_at_patch(aws: Aws, admin: Actor) -> None:
    # When a project is created with 3,000 classes (about 250 KB)
    config = _classes(3_000)
    assert len(json.dumps(config)) > 240_000
    created = call(
        "POST", "/projects", admin, {"name": "Big", "media_types": ["text"], "label_config": config}
    )

    # Then it is refused with label_config_too_large
    assert created.status == 422, created.body
    assert created.body["error"]["code"] == "label_config_too_large"
    # And so is a change to such a configuration
    project_id = _project(admin)
    patched = call("PATCH", f"/projects/{project_id}", admin, {"label_config": config})
    assert (patched.status, patched.body["error"]["code"]) == (422, "label_config_too_large")
    # And a configuration within the class limits but over the size limit
    wordy = call("PATCH", f"/projects/{project_id}", admin, {"label_config": _classes(1_000, 64, controls=2)})
    assert (wordy.status, wordy.body["error"]["code"]) == (422, "label_config_too_large")


def test_a_project_with_a_large_label_configuration_can_be_changed_and_archived(
    aws: Aws, admin: Actor
) -> None:
    # Given a project whose label configuration is near the size limit
    config = _classes(900)
    project_id = _project(admin, config)

    # When it is renamed, then archived
    renamed = call("PATCH", f"/projects/{project_id}", admin, {"name": "Renamed"})
    archived = call("POST", f"/projects/{project_id}/archive", admin)

    # Then both succeed, and their audit records hold what changed, not the whole project twice
    assert renamed.status == 200, renamed.body
    assert archived.status == 200, archived.body
    audit_url = f"/projects/{project_id}/audit?target_type=project&target_id={project_id}"
    records = call("GET", audit_url, admin).body["items"]
    by_action = {r["action"]: r for r in records}
    assert set(by_action["project.update"]["after"]) == {"name", "updated_at"}
    assert by_action["project.archive"]["before"]["status"] == "active"
    assert set(by_action["project.archive"]["after"]) == {"status", "updated_at"}


def _big_tasks(project_id: str, n: int, kilobytes: int) -> list[Any]:
    """Tasks of about ``kilobytes`` KB stored, in inline texts of at most 90 KB each."""
    sizes = [90] * (kilobytes // 90) + ([kilobytes % 90] if kilobytes % 90 else [])
    data = {f"t{i}": {"kind": "text", "text": "x" * (kb * 1024)} for i, kb in enumerate(sizes)}
    return [
        new_task(
            TaskCreate.model_validate({"data": data}),
            task_id=f"t-{i}",
            project_id=project_id,
            media_type=MediaType.TEXT,
            import_id="imp-size",
            source=TaskSource(line=i + 1),
        ).model_copy(update={"external_id": f"e-{i}"})
        for i in range(n)
    ]


def test_transactions_split_by_size_as_well_as_count(aws: Aws, admin: Actor) -> None:
    # Given 99 tasks of 45 KB: 99 actions fit one transaction, but 4.4 MB do not
    project_id = _project(admin)
    batch = _big_tasks(project_id, 99, 45)

    # When they are created conditionally (the path of external ids and of POST /tasks)
    result = tasks.put_new(project_id, batch, "imp-size")

    # Then every task is created, in more than one transaction, and counted once
    assert sorted(result.created) == sorted(t.task_id for t in batch)
    assert result.refused == [] and result.duplicates == []
    assert result.requests >= 2
    assert _count(project_id) == 99


def test_a_transaction_over_4_mb_is_refused_before_it_is_sent(aws: Aws, admin: Actor) -> None:
    # Given a transaction of 11 puts of 380 KB
    project_id = _project(admin)
    tx = dynamo.Tx()
    for task in _big_tasks(project_id, 11, 380):
        tx.put(dynamo.tasks().TaskItem(**mapping.task_to_attrs(task)))

    # When it is committed, then it is refused as too large, and nothing was written
    from serval.errors import TransactionTooLarge

    with pytest.raises(TransactionTooLarge):
        tx.commit()
    assert _listed(project_id, admin) == 0
