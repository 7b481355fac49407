"""A large manifest on the local stack: split into byte ranges by the ingest function, each range
imported by the ingest-ranges function (its own worker processes, fed by its SQS poller)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from infra.config import load
from infra.local.moto_server import ACCOUNT_ID, REGION, free_port
from infra.local.seed import DEMO_USERS, call_api, id_token
from infra.local.stack import LocalStack
from infra.spec import build

RANGE_BYTES = 64 * 2**10  # the smallest range the configuration allows


def _wait_for_import(
    stack: LocalStack, token: str, project_id: str, timeout_s: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page = call_api(stack.api_url, token, "GET", f"/projects/{project_id}/imports?limit=5")
        finished = [i for i in page["items"] if i["status"] != "running"]
        if finished:
            return dict(finished[0])
        time.sleep(0.5)
    raise TimeoutError("the import did not finish")


def test_a_manifest_over_the_range_size_is_imported_in_ranges_by_their_own_function(tmp_path: Path) -> None:
    # Given the local stack with 64 KiB ranges, and a ~300 KB manifest with two broken lines
    config = load("local").model_copy(update={"ingest_range_bytes": RANGE_BYTES})
    spec = build(config, ACCOUNT_ID, REGION)
    options: dict[str, dict[str, float]] = {"sqs": {"wait_time_s": 1}, "stream": {"poll_interval_s": 0.2}}
    lines = [json.dumps({"data": {"text": f"review {i}: " + "fine " * 15}}) for i in range(3_000)]
    lines[10] = "{broken"
    lines[2_500] = '{"data": 7}'
    manifest = "\n".join(lines).encode()
    with LocalStack(spec=spec, say=lambda _: None, save_state=False, poller_options=options).start(
        free_port(), free_port(), tmp_path, seed=True, restore=False
    ) as stack:
        assert stack.resources is not None
        admin = id_token(stack.resources, next(u for u in DEMO_USERS if u.role == "admin"))
        project = call_api(
            stack.api_url,
            admin,
            "POST",
            "/projects",
            {
                "name": "ranges",
                "media_types": ["text"],
                "label_config": {
                    "controls": [{"name": "s", "type": "classification", "classes": [{"name": "a"}]}]
                },
            },
        )
        project_id = project["project_id"]

        # When it is uploaded under the project's prefix
        boto3.client("s3").put_object(
            Bucket=spec.buckets["data"].name, Key=f"projects/{project_id}/big.jsonl", Body=manifest
        )
        record = _wait_for_import(stack, admin, project_id)

        # Then it was imported in ranges, each line once, and the report numbers the broken lines
        assert record["ranges_total"] == -(-len(manifest) // RANGE_BYTES) > 1
        assert record["ranges_done"] == record["ranges_total"]
        assert (record["status"], record["tasks_created"], record["errors"]) == (
            "completed_with_errors",
            2_998,
            2,
        )
        stats = call_api(stack.api_url, admin, "GET", f"/projects/{project_id}/stats")
        assert sum(stats["by_status"].values()) == 2_998
        detail = call_api(
            stack.api_url, admin, "GET", f"/projects/{project_id}/imports/{record['import_id']}"
        )
        with urllib.request.urlopen(detail["error_report_url"], timeout=30) as response:
            report = [json.loads(line) for line in response.read().decode().splitlines()]
        assert [e["line"] for e in report] == [11, 2_501]
        assert report[1]["offset"] == len("\n".join(lines[:2_500]).encode()) + 1
