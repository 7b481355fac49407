"""End to end on the local stack as `make dev` runs it: S3 upload -> tasks -> HTTP with real JWTs."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from infra.local.datasets import datasets_dir
from infra.local.seed import DEMO_USERS
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, start_dev_stack
from tests.e2e.conftest import aws_client as _aws
from tests.e2e.conftest import demo_token as _token
from tests.e2e.conftest import http as _http
from tests.e2e.conftest import wait_for as _wait

pytestmark = pytest.mark.e2e
SHARED = datasets_dir()


def test_banner_prints_urls_and_every_login(dev_stack: DevStack) -> None:
    text = dev_stack.text()
    assert dev_stack.api_url in text
    for user in DEMO_USERS:
        assert user.email in text
        assert user.password in text
    # And what each may do, globally and in the demo project, from the permission table
    annotator = (
        "demo project (annotator): project:read, task:read, annotation:create, annotation:read (their own)"
    )
    assert annotator in text
    assert "demo project (admin): every action in every project" in text
    assert "global: project:create, project:list, self:read, user:read, user:activity:read" in text


def test_demo_project_is_seeded_through_the_ingest_path(dev_stack: DevStack) -> None:
    token = _token(dev_stack, "annotator")
    status, projects = _http(dev_stack, "GET", "/projects", token)
    assert status == 200
    demo = next(p for p in projects["items"] if p["name"].startswith("Demo"))
    status, page = _http(dev_stack, "GET", f"/projects/{demo['project_id']}/tasks?limit=100", token)
    assert status == 200
    # (the stack runs without ../shared/, so these come from the repository's bundled datasets)
    assert len(page["items"]) >= 30
    assert all(
        t["data"]["image"]["key"].startswith(f"projects/{demo['project_id']}/")
        for t in page["items"]
        if "image" in t["data"]
    )


def test_manifest_uploaded_to_s3_becomes_tasks_visible_to_an_annotator(dev_stack: DevStack) -> None:
    # Given a text project created over HTTP by a manager
    manager = _token(dev_stack, "manager")
    status, project = _http(
        dev_stack,
        "POST",
        "/projects",
        manager,
        {
            "name": "Reviews",
            "media_types": ["text"],
            "label_config": {
                "controls": [
                    {
                        "name": "sentiment",
                        "type": "classification",
                        "classes": [{"name": "positive"}, {"name": "negative"}, {"name": "neutral"}],
                    }
                ]
            },
        },
    )
    assert status == 201, project
    project_id = project["project_id"]
    # And the manager makes the annotator a member (the project's creator is its manager)
    annotator = _token(dev_stack, "annotator")
    _, me = _http(dev_stack, "GET", "/me", annotator)
    member = {"user_id": me["user_id"], "role": "annotator"}
    assert _http(dev_stack, "POST", f"/projects/{project_id}/members", manager, member)[0] == 201
    # When the shared text manifest is uploaded with boto3 to the local S3 endpoint
    manifest = (SHARED / "manifests" / "text.jsonl").read_bytes()
    lines = [line for line in manifest.decode().splitlines() if line.strip()]
    bucket = next(b["Name"] for b in _aws(dev_stack, "s3").list_buckets()["Buckets"] if "-data-" in b["Name"])
    _aws(dev_stack, "s3").put_object(
        Bucket=bucket, Key=f"projects/{project_id}/manifests/text.jsonl", Body=manifest
    )
    # Then the annotator sees one task per line over HTTP, page by page

    def all_tasks() -> list[dict[str, Any]] | None:
        tasks: list[dict[str, Any]] = []
        cursor = ""
        while True:
            status, page = _http(
                dev_stack, "GET", f"/projects/{project_id}/tasks?limit=100{cursor}", annotator
            )
            assert status == 200
            tasks += page["items"]
            if not page["next_cursor"]:
                return tasks if len(tasks) == len(lines) else None
            cursor = f"&cursor={page['next_cursor']}"

    tasks = _wait(all_tasks)
    assert {t["external_id"] for t in tasks} == {json.loads(line)["id"] for line in lines}
    status, imports = _http(dev_stack, "GET", f"/projects/{project_id}/imports", manager)
    assert imports["items"][0]["status"] == "completed"
    assert imports["items"][0]["tasks_created"] == len(lines)


def test_broken_manifest_reports_its_bad_lines(dev_stack: DevStack) -> None:
    admin = _token(dev_stack, "admin")
    _, project = _http(
        dev_stack,
        "POST",
        "/projects",
        admin,
        {
            "name": "Digits",
            "media_types": ["image"],
            "label_config": {
                "controls": [
                    {
                        "name": "digit",
                        "type": "classification",
                        "classes": [{"name": str(d)} for d in range(10)],
                    }
                ]
            },
        },
    )
    project_id = project["project_id"]
    bucket = next(b["Name"] for b in _aws(dev_stack, "s3").list_buckets()["Buckets"] if "-data-" in b["Name"])
    _aws(dev_stack, "s3").put_object(
        Bucket=bucket,
        Key=f"projects/{project_id}/broken.jsonl",
        Body=(SHARED / "manifests" / "broken.jsonl").read_bytes(),
    )

    def finished() -> dict[str, Any] | None:
        _, imports = _http(dev_stack, "GET", f"/projects/{project_id}/imports", admin)
        done = [i for i in imports["items"] if i["status"] != "running"]
        return done[0] if done else None

    record = _wait(finished)
    assert record["status"] == "completed_with_errors"
    assert record["errors"] > 0
    assert record["tasks_created"] > 0
    _, detail = _http(dev_stack, "GET", f"/projects/{project_id}/imports/{record['import_id']}", admin)
    with urllib.request.urlopen(detail["error_report_url"], timeout=30) as response:
        report = [json.loads(line) for line in response.read().decode().splitlines()]
    assert len(report) == record["errors"]
    assert all(r["line"] > 0 and r["error"] for r in report)


def test_api_answers_with_real_jwts(dev_stack: DevStack) -> None:
    annotator = _token(dev_stack, "annotator")
    assert _http(dev_stack, "GET", "/health")[0] == 200
    assert _http(dev_stack, "GET", "/projects")[0] == 401
    forged = annotator[:-4] + ("AAAA" if not annotator.endswith("AAAA") else "BBBB")
    assert _http(dev_stack, "GET", "/projects", forged)[0] == 401
    status, body = _http(
        dev_stack, "POST", "/projects", annotator, {"name": "x", "media_types": ["image"], "label_config": {}}
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")
    admin = _token(dev_stack, "admin")
    status, body = _http(
        dev_stack, "POST", "/projects", admin, {"name": "x", "media_types": ["image"], "label_config": {}}
    )
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    status, body = _http(dev_stack, "GET", "/projects/p_doesnotexist", admin)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, me = _http(dev_stack, "GET", "/me", annotator)
    assert me["groups"] == ["annotator"]


def test_unsupported_upload_goes_to_the_dlq_with_a_reason(dev_stack: DevStack) -> None:
    admin = _token(dev_stack, "admin")
    _, projects = _http(dev_stack, "GET", "/projects", admin)
    project_id = projects["items"][0]["project_id"]
    s3, sqs = _aws(dev_stack, "s3"), _aws(dev_stack, "sqs")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "-data-" in b["Name"])
    s3.put_object(Bucket=bucket, Key=f"projects/{project_id}/notes.xyz", Body=b"?")
    dlq = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-ingest-dlq"))

    def poisoned() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1).get(
            "Messages", []
        )

    [message] = _wait(poisoned)
    assert "notes.xyz" in message["MessageAttributes"]["error-reason"]["StringValue"]


def test_state_survives_a_restart(tmp_path: Any) -> None:
    # Given a stack that seeded its demo project, stopped with Ctrl-C
    first = start_dev_stack(tmp_path)
    token = _token(first, "admin")
    _, before = _http(first, "GET", "/projects", token)
    assert first.stop() == 0
    assert "Saved to" in first.text()
    # When it starts again on the same data directory
    second = start_dev_stack(tmp_path)
    try:
        token = _token(second, "admin")
        _, after = _http(second, "GET", "/projects", token)
        # Then the same projects are there, and the demo was not seeded a second time
        assert [p["project_id"] for p in after["items"]] == [p["project_id"] for p in before["items"]]
        project_id = before["items"][0]["project_id"]
        _, one = _http(second, "GET", f"/projects/{project_id}/tasks?limit=500", token)
        assert len(one["items"]) > 0
    finally:
        second.stop()


def test_ctrl_c_while_the_stack_starts_stops_it_at_once_with_its_state_saved(tmp_path: Any) -> None:
    # Given a stack still starting: it waits for its demo media to be ingested
    starting = start_dev_stack(tmp_path, ready_line="waiting for ingest")
    # When it gets Ctrl-C, Then it abandons the start and stops by itself, saving what it has
    assert starting.stop() == 0
    assert "Interrupted while starting" in starting.text()
    assert "Ctrl-C stops the stack" not in starting.text()


def test_login_helper_prints_a_token_the_api_accepts(dev_stack: DevStack) -> None:
    import subprocess
    import sys

    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.login",
            "reviewer@serval.local",
            "--endpoint-url",
            dev_stack.endpoint_url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    status, me = _http(dev_stack, "GET", "/me", token)
    assert (status, me["groups"]) == (200, ["reviewer"])


def _records_shown(console: str) -> list[dict[str, Any]]:
    """The function log records on the console (each line prefixed with its function's name)."""
    shown = []
    for line in console.splitlines():
        name, _, rest = line.partition(": ")
        if name.startswith("serval-local-") and rest.startswith("{"):
            shown.append(json.loads(rest))
    return shown


def test_the_console_says_a_line_per_request_and_pipeline_step_and_keeps_function_logs_in_files(
    dev_stack: DevStack,
) -> None:
    # Given a stack that ingested its demo media and the manifests of the tests before, has
    # started their executions, and runs a dataset export of the demo project
    admin = _token(dev_stack, "admin")
    _, projects = _http(dev_stack, "GET", "/projects", admin)
    demo = next(p for p in projects["items"] if p["name"].startswith("Demo"))
    pid = demo["project_id"]
    status, job = _http(dev_stack, "POST", f"/projects/{pid}/exports", admin, {"format": "jsonl"})
    assert status == 202, job

    def finished() -> dict[str, Any] | None:
        view = _http(dev_stack, "GET", f"/projects/{pid}/exports/{job['job_id']}", admin)[1]
        return view if view["status"] in ("succeeded", "failed") else None

    view = _wait(finished)
    assert view["status"] == "succeeded", view
    _wait(lambda: f"export: job {job['job_id']} " in dev_stack.text(), what="the export's line")
    console = dev_stack.text()

    # Then each API request was one short line: method, path, status, time, caller
    assert re.search(rf"^POST /projects/{pid}/exports 202 \d+ ms admin@serval\.local$", console, re.M)
    assert re.search(r"^GET /projects 200 \d+ ms annotator@serval\.local$", console, re.M)
    # And each pipeline step one line: the uploaded media, each manifest, the executions, the export
    assert re.search(r"^ingest: [\d,]+ tasks? from uploaded files$", console, re.M)
    lines = len(
        [line for line in (SHARED / "manifests" / "text.jsonl").read_text().splitlines() if line.strip()]
    )
    assert re.search(rf"^ingest: {lines:,} tasks from text\.jsonl in [\d.]+ s$", console, re.M)
    assert re.search(
        r"^ingest: [\d,]+ tasks? from broken\.jsonl in [\d.]+ s \([\d,]+ line errors?\)$", console, re.M
    )
    assert re.search(r"^workflow: [\d,]+ executions? started", console, re.M)
    done = view["counts"]["done"]
    assert re.search(
        rf"^export: job {job['job_id']} done \(jsonl, {done:,} tasks?\) in [\d.]+ s$", console, re.M
    )
    # And the per-task steps were summed up: far fewer ingest lines than tasks
    assert len(re.findall(r"^ingest: ", console, re.M)) < demo_tasks(dev_stack, admin, pid)
    # And no routine function records nor metrics reach the console: warnings and errors only
    assert all(r.get("level") in ("WARNING", "ERROR", "CRITICAL") for r in _records_shown(console))
    assert '"_aws"' not in console
    # And each function's whole output is in its log file: the api's metrics, and no INFO
    # records, as the functions log at WARNING locally (--verbose: INFO)
    api_log = (dev_stack.data_dir / "logs" / "serval-local-api.log").read_text()
    assert '"_aws"' in api_log
    assert '"level":"INFO"' not in api_log
    assert (dev_stack.data_dir / "logs" / "serval-local-ingest.log").is_file()


def demo_tasks(stack: DevStack, token: str, project_id: str) -> int:
    status, stats = _http(stack, "GET", f"/projects/{project_id}/stats", token)
    assert status == 200, stats
    return int(stats["tasks"])
