"""The tamper-evident audit trail against moto: seal on write, chain from the stream, verify."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.metering import metered
from serval import keys
from serval.adapters import audit, dynamo
from serval.domain import audit as domain
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.logic import audit_chain, ingest, queue
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join
from tests.integration.streams import StreamReader, deliver
from tests.integration.test_api import _create_project

CLASSIFY = {"results": [{"control": "shape", "type": "classification", "labels": ["circle"]}]}
FAKE_SEAL = "f" * 64


# ---- helpers ---------------------------------------------------------------------------------


def chainer_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The chainer's handler, imported once the fixture set its environment (metrics namespace)."""
    from chainer.handler import handler

    return dict(handler(event, context))


def _session(admin: Actor, annotator: Actor) -> tuple[str, list[str]]:
    """A project with a scripted session of mutations: create, bulk create, patch, annotate, delete."""
    project_id = _create_project(admin)
    join(project_id, annotator, "annotator")
    created = call(
        "POST",
        f"/projects/{project_id}/tasks",
        admin,
        [{"data": {"text": f"t{i}"}, "tags": ["a"]} for i in range(3)],
    )
    assert created.status == 201, created.body
    task_ids: list[str] = created.body["task_ids"]
    patched = call("PATCH", f"/projects/{project_id}/tasks/{task_ids[0]}", admin, {"priority": 5})
    assert patched.status == 200, patched.body
    queue.enter_label(project_id, task_ids[1], token=f"tok-{task_ids[1]}", rework=0)
    assert call("POST", f"/projects/{project_id}/next", annotator).body["task"]["task_id"] == task_ids[1]
    annotated = call("POST", f"/projects/{project_id}/tasks/{task_ids[1]}/annotations", annotator, CLASSIFY)
    assert annotated.status == 201, annotated.body
    assert call("DELETE", f"/projects/{project_id}/tasks/{task_ids[2]}", admin).status == 204
    return project_id, task_ids


def _chain(reader: StreamReader) -> list[dict[str, Any]]:
    """Deliver everything new on the audit stream to the chainer, as one batch; return the batch."""
    records = reader.read()
    response = deliver(chainer_handler, records)
    assert response["batchItemFailures"] == []
    return records


def _records(aws: Aws, project_id: str | None) -> list[dict[str, Any]]:
    """The scope's audit records (low-level items), in chain order (unchained last)."""
    items = aws.ddb.query(
        TableName=aws.env["AUDIT_TABLE"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.audit_pk(project_id)}},
        ConsistentRead=True,
    )["Items"]
    return sorted(items, key=lambda i: int(i.get("chain_seq", {}).get("N", 10**9)))


def _verify(admin: Actor, project_id: str) -> dict[str, Any]:
    response = call("GET", f"/projects/{project_id}/audit/verify", admin)
    assert response.status == 200, response.body
    return dict(response.body)


def _forged_item(project_id: str, at: str, audit_id: str = "aud_forged") -> dict[str, Any]:
    return {
        "PK": {"S": keys.audit_pk(project_id)},
        "SK": {"S": keys.time_sort_key(at, audit_id)},
        "entity": {"S": "audit"},
        "GSI1PK": {"S": keys.audit_actor_pk("u-mallory")},
        "GSI1SK": {"S": keys.time_sort_key(at, audit_id)},
        "GSI2PK": {"S": keys.audit_target_pk("task", "t_x")},
        "GSI2SK": {"S": keys.time_sort_key(at, audit_id)},
        "audit_id": {"S": audit_id},
        "project_id": {"S": project_id},
        "actor_id": {"S": "u-mallory"},
        "actor_role": {"S": "admin"},
        "action": {"S": "task.update"},
        "target_type": {"S": "task"},
        "target_id": {"S": "t_x"},
        "after": {"S": json.dumps({"priority": 100})},
        "at": {"S": at},
        "seal": {"S": FAKE_SEAL},
    }


# ---- a real session chains and verifies ------------------------------------------------------


def test_a_session_of_mutations_chains_in_order_and_verifies_ok(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given a session of mutations through the API, and the chainer fed from the stream
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    # Then every record of the project is linked, 1..n, each to the previous one
    records = _records(aws, project_id)
    assert [int(r["chain_seq"]["N"]) for r in records] == list(range(1, len(records) + 1))
    assert records[0]["prev_hash"]["S"] == domain.GENESIS_HASH
    for prev, link in itertools.pairwise(records):
        assert link["prev_hash"]["S"] == prev["hash"]["S"]
    actions = [r["action"]["S"] for r in records]
    assert actions[0] == "project.create"
    assert {"member.add", "import.complete", "task.update", "annotation.create", "task.delete"} <= set(
        actions
    )
    # And the verify endpoint says the chain is intact
    report = _verify(admin, project_id)
    assert report["ok"] is True, report
    assert report["records_checked"] == len(records)
    assert report["head_seq"] == len(records)
    assert report["first_seq"] == 1
    assert report["pending"] == 0
    assert report["broken"] is None
    # And the records carry who did what, from where
    annotation = next(r for r in records if r["action"]["S"] == "annotation.create")
    record = audit.record_from_item(annotation)
    assert record.actor_id == annotator.user_id
    assert record.actor_project_role == "annotator"
    assert record.request_id
    assert record.source_ip == "127.0.0.1"
    assert record.user_agent == "pytest"
    # And the pynamodb mapping reads the same records as the low-level one
    by_model = [audit.record_from_model(i) for i in dynamo.audit().AuditItem.query(keys.audit_pk(project_id))]
    assert sorted(by_model, key=lambda r: r.chain_seq or 0) == [audit.record_from_item(r) for r in records]


def test_the_global_chain_verifies_for_admins_only(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a global change (a user added to the directory) chained from the stream
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    join(_create_project(admin), annotator, "annotator")
    enrol(annotator)
    _chain(reader)
    # When an admin verifies the global chain
    report = call("GET", "/audit/verify", admin)
    # Then it is intact and holds the global records; others may not verify it
    assert report.status == 200, report.body
    assert report.body["scope"] == keys.GLOBAL_SCOPE
    assert report.body["ok"] is True
    assert report.body["records_checked"] == len(_records(aws, None)) >= 1
    assert call("GET", "/audit/verify", annotator).status == 403


def test_bulk_create_writes_one_record_with_counts_and_the_affected_ids(aws: Aws, admin: Actor) -> None:
    # Given a bulk create of three tasks
    project_id = _create_project(admin)
    created = call(
        "POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": str(i)}} for i in range(3)]
    )
    # Then one import.complete record carries the counts and points at the created ids in S3
    [bulk] = [r for r in _records(aws, project_id) if r["action"]["S"] == "import.complete"]
    record = audit.record_from_item(bulk)
    assert record.counts == {"lines_total": 3, "tasks_created": 3, "duplicates": 0, "errors": 0}
    assert record.affected_ids_key == f"audit-evidence/{project_id}/{record.audit_id}.json"
    body = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=record.affected_ids_key)["Body"].read()
    assert sorted(json.loads(body)) == sorted(created.body["task_ids"])
    # And no per-task records were written for the bulk create
    assert not [r for r in _records(aws, project_id) if r["action"]["S"] == "task.create"]


def test_a_bulk_records_id_list_is_sealed_by_its_sha256(aws: Aws, admin: Actor) -> None:
    # Given a bulk create, its records chained
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id = _create_project(admin)
    call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": str(i)}} for i in range(3)])
    _chain(reader)
    [bulk] = [r for r in _records(aws, project_id) if r["action"]["S"] == "import.complete"]
    record = audit.record_from_item(bulk)

    # Then the record holds the SHA-256 of the id list it points at, as a sealed field
    assert record.affected_ids_key is not None
    body = aws.s3.get_object(Bucket=aws.env["EXPORT_BUCKET"], Key=record.affected_ids_key)["Body"].read()
    assert record.affected_ids_sha256 == hashlib.sha256(body).hexdigest()
    assert _verify(admin, project_id)["ok"] is True
    # And a list swapped for another one no longer matches, and changing the sealed hash to
    # match it breaks the record's link
    forged = json.dumps(["t_innocent"]).encode()
    assert hashlib.sha256(forged).hexdigest() != record.affected_ids_sha256
    aws.ddb.update_item(
        TableName=aws.env["AUDIT_TABLE"],
        Key={"PK": bulk["PK"], "SK": bulk["SK"]},
        UpdateExpression="SET affected_ids_sha256 = :h",
        ExpressionAttributeValues={":h": {"S": hashlib.sha256(forged).hexdigest()}},
    )
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["broken"]["audit_id"] == record.audit_id
    assert report["broken"]["reason"] == "hash_mismatch"


def test_a_manifest_import_writes_one_record_with_counts_and_the_import_as_pointer(
    aws: Aws, admin: Actor
) -> None:
    # Given a manifest with three good lines and a broken one
    project_id = _create_project(admin)
    lines = [
        json.dumps({"id": "a", "data": {"text": "one"}}),
        "{broken",
        json.dumps({"id": "b", "data": {"text": "one again"}}),
        json.dumps({"data": {"text": "two"}}),
    ]
    key = f"projects/{project_id}/m.jsonl"
    aws.s3.put_object(Bucket=aws.env["DATA_BUCKET"], Key=key, Body="\n".join(lines).encode())
    etag = aws.s3.head_object(Bucket=aws.env["DATA_BUCKET"], Key=key)["ETag"].strip('"')
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": aws.env["DATA_BUCKET"]},
                    "object": {"key": key, "eTag": etag, "size": 1},
                },
            }
        ]
    }
    # When it is ingested
    [outcome] = ingest.process_message(json.dumps(event), "m1", lambda: 900.0)
    assert outcome.kind == "import_completed", outcome
    # Then one record carries the counts; the import (every task names it) is the pointer
    [done] = [r for r in _records(aws, project_id) if r["action"]["S"] == "import.complete"]
    record = audit.record_from_item(done)
    assert record.counts == {"lines_total": 4, "tasks_created": 3, "duplicates": 0, "errors": 1}
    assert record.affected_ids_key is None
    assert record.target_type == "import"
    assert record.target_id == outcome.detail["import_id"]


def test_redelivering_the_same_batch_is_idempotent(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a chained session
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    batch = _chain(reader)
    before = _records(aws, project_id)
    # When the same batch arrives again, and then the chainer's own changes (MODIFY, heads)
    assert deliver(chainer_handler, batch)["batchItemFailures"] == []
    assert deliver(chainer_handler, reader.read())["batchItemFailures"] == []
    # Then nothing moved
    assert _records(aws, project_id) == before
    assert _verify(admin, project_id)["ok"] is True


def test_a_failure_stops_the_batch_at_that_record_and_the_retry_skips_nothing(
    aws: Aws, admin: Actor, annotator: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose run of records cannot be linked (a throttled table, say), and whose
    # records one by one fail from the third on
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    batch = [r for r in reader.read() if r["eventName"] == "INSERT"]
    adapter = audit_chain.audit_chain
    original_run, original_link = adapter.link_run, adapter.link
    failing = batch[2]["dynamodb"]["NewImage"]["audit_id"]["S"]

    def refused_run(scope: str, run: list[Any], *args: Any) -> Any:
        if len(run) > 1:  # a whole run is refused; one record at a time goes through
            raise adapter.RunRefused("pretend a record of the run was linked already")
        return original_run(scope, run, *args)

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if args[3] == failing:
            raise RuntimeError("throttled")
        return original_link(*args, **kwargs)

    monkeypatch.setattr(adapter, "link_run", refused_run)
    monkeypatch.setattr(adapter, "link", flaky)
    # When the chainer runs it
    response = deliver(chainer_handler, batch)
    # Then that record and every later one are reported failed, none of them linked
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["dynamodb"]["SequenceNumber"] for r in batch[2:]]
    assert sum("chain_seq" in r for r in _records(aws, project_id)) == 2
    # And when Lambda retries from the failed record, the chain is complete and in order
    monkeypatch.setattr(adapter, "link_run", original_run)
    monkeypatch.setattr(adapter, "link", original_link)
    assert deliver(chainer_handler, batch[2:])["batchItemFailures"] == []
    linked = _records(aws, project_id)
    assert [r["audit_id"]["S"] for r in linked] == [r["dynamodb"]["NewImage"]["audit_id"]["S"] for r in batch]
    assert _verify(admin, project_id)["ok"] is True


def test_a_failed_run_fails_the_batch_from_its_first_record_and_other_scopes_are_kept(
    aws: Aws, admin: Actor, annotator: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one batch with records of two projects (two scopes, interleaved)
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    first, _ = _session(admin, annotator)
    second, _ = _session(admin, annotator)
    batch = [r for r in reader.read() if r["eventName"] == "INSERT"]
    scope_of = {first: keys.audit_pk(first), second: keys.audit_pk(second)}
    adapter = audit_chain.audit_chain
    original = adapter.link_run

    def throttled_first(scope: str, *args: Any, **kwargs: Any) -> Any:
        if keys.audit_scope_pk(scope) == scope_of[first]:
            raise RuntimeError("throttled")
        return original(scope, *args, **kwargs)

    monkeypatch.setattr(adapter, "link_run", throttled_first)
    # When the chainer runs it
    response = deliver(chainer_handler, batch)
    # Then the batch fails from the first project's first record; none of its records is linked
    in_first = [i for i, r in enumerate(batch) if r["dynamodb"]["Keys"]["PK"]["S"] == scope_of[first]]
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [r["dynamodb"]["SequenceNumber"] for r in batch[in_first[0] :]]
    assert not any("chain_seq" in r for r in _records(aws, first))
    # And the other project's run was linked in one go
    assert all("chain_seq" in r for r in _records(aws, second))
    # And the retry from the failed record links the first project without touching the second
    before = _records(aws, second)
    monkeypatch.setattr(adapter, "link_run", original)
    assert deliver(chainer_handler, batch[in_first[0] :])["batchItemFailures"] == []
    assert _records(aws, second) == before
    assert _verify(admin, first)["ok"] is True and _verify(admin, second)["ok"] is True


def test_a_batch_links_a_scope_with_one_head_read_and_one_transaction_per_run(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given a session's records of one project (one scope), more than a run holds
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id = _create_project(admin)
    join(project_id, annotator, "annotator")
    for _ in range(3):
        body = [{"data": {"text": f"t{i}"}} for i in range(40)]
        created = call("POST", f"/projects/{project_id}/tasks", admin, body)
        for task_id in created.body["task_ids"]:
            patched = call("PATCH", f"/projects/{project_id}/tasks/{task_id}", admin, {"priority": 1})
            assert patched.status == 200
    batch = [
        r
        for r in reader.read()
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["PK"]["S"] == keys.audit_pk(project_id)
    ]
    assert len(batch) > audit_chain.audit_chain.MAX_RUN
    # When the chainer links them as one batch
    with metered() as calls:
        assert deliver(chainer_handler, batch)["batchItemFailures"] == []
    # Then it read the head and wrote one transaction per run of 99 records
    runs = -(-len(batch) // audit_chain.audit_chain.MAX_RUN)
    assert calls.count("dynamodb:TransactWriteItems") == runs
    assert calls.count("dynamodb:GetItem") == runs
    assert _verify(admin, project_id)["ok"] is True


# ---- tampering is reported -------------------------------------------------------------------


def test_a_record_changed_in_the_table_is_reported_at_its_seq(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given a chained session
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    victim = _records(aws, project_id)[3]
    # When someone with table access rewrites the record's after
    aws.ddb.update_item(
        TableName=aws.env["AUDIT_TABLE"],
        Key={"PK": victim["PK"], "SK": victim["SK"]},
        UpdateExpression="SET #a = :a",
        ExpressionAttributeNames={"#a": "after"},
        ExpressionAttributeValues={":a": {"S": json.dumps({"priority": 0})}},
    )
    # Then verify names that record's seq
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["broken"]["seq"] == 4
    assert report["broken"]["audit_id"] == victim["audit_id"]["S"]
    assert report["broken"]["reason"] == "hash_mismatch"


def test_a_forged_record_is_linked_faithfully_and_flagged_by_its_seal(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given a chained session, then a record put straight into the table (no valid seal)
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    head = len(_records(aws, project_id))
    aws.ddb.put_item(TableName=aws.env["AUDIT_TABLE"], Item=_forged_item(project_id, utcnow()))
    # When the chainer sees it on the stream
    _chain(reader)
    # Then it is linked like any record, and verify reports it by its bad seal
    assert int(_records(aws, project_id)[-1]["chain_seq"]["N"]) == head + 1
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["broken"] == {
        "seq": head + 1,
        "audit_id": "aud_forged",
        "reason": "seal_invalid",
        "detail": "the record's seal is not valid",
    }


@pytest.mark.parametrize(("position", "reason"), [("next", "seal_invalid"), ("taken", "seq_duplicate")])
def test_a_forged_record_with_fake_chain_fields_is_reported(
    aws: Aws, admin: Actor, annotator: Actor, position: str, reason: str
) -> None:
    # Given a chained session
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    records = _records(aws, project_id)
    # When a forger appends (or slots in) a record with well-formed chain fields
    seq = len(records) + 1 if position == "next" else 3
    prev_hash = records[seq - 2]["hash"]["S"]
    item = _forged_item(project_id, utcnow())
    digest = domain.record_digest(audit.sealed_fields(item))
    item |= {
        "chain_seq": {"N": str(seq)},
        "prev_hash": {"S": prev_hash},
        "hash": {"S": domain.link_hash(prev_hash, digest)},
        "GSI3PK": {"S": keys.chain_pk(project_id)},
        "GSI3SK": {"S": keys.chain_seq_sk(seq)},
    }
    aws.ddb.put_item(TableName=aws.env["AUDIT_TABLE"], Item=item)
    _chain(reader)  # the chainer leaves a record that already has chain fields alone
    # Then verify reports it at its seq
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["broken"]["seq"] == seq
    assert report["broken"]["reason"] == reason


def test_a_forged_record_with_chain_fields_but_off_the_chain_index_is_reported(
    aws: Aws, admin: Actor, annotator: Actor
) -> None:
    # Given a chained session
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    # When a forger writes a record that claims a chain position but stays off the chain index
    item = _forged_item(project_id, utcnow(), audit_id="aud_offchain")
    item |= {"chain_seq": {"N": "2"}, "prev_hash": {"S": "0" * 64}, "hash": {"S": "f" * 64}}
    aws.ddb.put_item(TableName=aws.env["AUDIT_TABLE"], Item=item)
    _chain(reader)  # the chainer leaves a record that already has chain fields alone
    # Then verify reports it at once, though it is younger than the pending grace period
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["pending"] == 0
    assert (report["broken"]["audit_id"], report["broken"]["reason"]) == ("aud_offchain", "off_chain_record")


def test_a_deleted_record_leaves_a_gap(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a chained session
    reader = StreamReader(aws.env["AUDIT_TABLE"])
    project_id, _ = _session(admin, annotator)
    _chain(reader)
    victim = _records(aws, project_id)[2]
    # When someone deletes a record
    aws.ddb.delete_item(TableName=aws.env["AUDIT_TABLE"], Key={"PK": victim["PK"], "SK": victim["SK"]})
    # Then verify reports the missing seq
    report = _verify(admin, project_id)
    assert report["ok"] is False
    assert report["broken"]["seq"] == 3
    assert report["broken"]["reason"] == "seq_gap"


def test_unchained_records_are_pending_then_broken(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given a session the chainer has not seen yet
    project_id, _ = _session(admin, annotator)
    count = len(_records(aws, project_id))
    # Then its records are pending, not broken
    report = audit_chain.verify(project_id)
    assert report.ok is True
    assert report.pending == count
    assert report.head_seq is None
    # And once they are older than the grace period, the oldest is reported
    later = audit_chain.verify(project_id, now=datetime.now(UTC) + timedelta(minutes=10))
    assert later.ok is False
    assert later.broken is not None
    assert later.broken.reason == domain.BreakReason.UNCHAINED_RECORD
    assert later.broken.audit_id == _records(aws, project_id)[0]["audit_id"]["S"]


# ---- the audit write is part of the change ---------------------------------------------------


def test_a_change_whose_audit_put_fails_is_not_applied(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task, and an audit table that refuses the next record (its conditional put fails)
    project_id = _create_project(admin)
    [task_id] = call("POST", f"/projects/{project_id}/tasks", admin, [{"data": {"text": "x"}}]).body[
        "task_ids"
    ]
    before_task = call("GET", f"/projects/{project_id}/tasks/{task_id}", admin).body
    before_audit = _records(aws, project_id)
    original = audit.record

    def refused(tx: Any, *args: Any, **kwargs: Any) -> str:
        audit_id = original(tx, *args, **kwargs)
        tx.actions[-1]["Put"]["ConditionExpression"] = "attribute_exists(#pk)"  # the new record: fails
        return audit_id

    monkeypatch.setattr(audit, "record", refused)
    # When the task is changed and deleted
    patched = call("PATCH", f"/projects/{project_id}/tasks/{task_id}", admin, {"priority": 9, "tags": ["z"]})
    deleted = call("DELETE", f"/projects/{project_id}/tasks/{task_id}", admin)
    # Then neither change happened, and no audit record appeared
    assert patched.status == 409
    assert deleted.status == 409
    monkeypatch.setattr(audit, "record", original)
    assert call("GET", f"/projects/{project_id}/tasks/{task_id}", admin).body == before_task
    assert call("GET", f"/projects/{project_id}/tasks?tag=z", admin).body["items"] == []
    assert _records(aws, project_id) == before_audit


# ---- the API never rewrites the trail --------------------------------------------------------


def test_no_api_route_modifies_or_deletes_audit_records() -> None:
    from api.handler import app

    # Given the API's OpenAPI document
    paths: dict[str, Any] = app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True)["paths"]
    # Then every operation on an /audit path only reads, except starting an export job
    writes = [
        (method, path)
        for path, operations in paths.items()
        if "/audit" in path
        for method in operations
        if method in {"put", "patch", "delete", "post"}
    ]
    allowed = [(m, p) for m, p in writes if m == "post" and p.endswith("/audit/exports")]
    assert writes == allowed
    assert "/projects/{project_id}/audit/verify" in paths
    assert "/audit/verify" in paths
