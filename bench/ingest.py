"""Ingest and listing on the local stack, at 10k and 50k-line manifests.

Measured in one run of the local stack (the same moto server, handlers and pollers as
`make dev`):
- ingest throughput: manifest upload to every task visible (the import completed);
- the raw BatchWriteItem item rate of the same moto server, for comparison;
- AWS requests the ingest function made per task, counted by hooking every botocore
  client, compared with the floor of 1/25 BatchWriteItem per task;
- list-page latency (GET /projects/{id}/tasks?limit=50 through the local gateway,
  first pages and deep pages) at 1k and 50k tasks;
- peak RSS of the process holding the whole stack.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import psutil

from bench.metering import metered
from bench.report import Table, percentile
from infra.local.moto_server import free_port
from infra.local.seed import DEMO_USERS, call_api, id_token, user_id_of
from infra.local.stack import LocalStack

SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "10000,50000").split(","))
LIST_SAMPLES = 200
PROJECT = {
    "name": "bench",
    "media_types": ["text"],
    "label_config": {
        "controls": [
            {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
        ]
    },
}


def _manifest(lines: int) -> bytes:
    return "\n".join(
        json.dumps({"data": {"text": f"review number {i}: the product was fine"}, "metadata": {"n": i}})
        for i in range(lines)
    ).encode()


def raw_batch_write_rate(table: str, items: int, client: Any = None, partition: str = "BENCH#raw") -> float:
    """Items/s of plain BatchWriteItem calls (25 items each) against the same server."""
    client = client or boto3.client("dynamodb")
    start = time.perf_counter()
    for base in range(0, items, 25):
        client.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "PK": {"S": partition},
                                "SK": {"S": f"TASK#{base + i:08d}"},
                                "entity": {"S": "bench"},
                                "data": {"S": json.dumps({"text": {"kind": "text", "text": "x" * 40}})},
                            }
                        }
                    }
                    for i in range(min(25, items - base))
                ]
            }
        )
    return items / (time.perf_counter() - start)


def wait_for_import(api_url: str, token: str, project_id: str, timeout_s: float = 900) -> dict[str, Any]:
    """The project's first import once it is no longer running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page = call_api(api_url, token, "GET", f"/projects/{project_id}/imports?limit=5")
        done = [i for i in page["items"] if i["status"] != "running"]
        if done:
            return dict(done[0])
        time.sleep(0.05)
    raise TimeoutError("the import did not finish")


def _list_latency(stack: LocalStack, token: str, project_id: str) -> tuple[list[float], list[float]]:
    """Latencies (ms) of first pages, and of pages reached through cursors (deep pages)."""
    first: list[float] = []
    deep: list[float] = []
    cursor = None
    for i in range(LIST_SAMPLES):
        start = time.perf_counter()
        page = call_api(stack.api_url, token, "GET", f"/projects/{project_id}/tasks?limit=50")
        first.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        path = f"/projects/{project_id}/tasks?limit=50" + (f"&cursor={cursor}" if cursor else "")
        page = call_api(stack.api_url, token, "GET", path)
        deep.append((time.perf_counter() - start) * 1000)
        cursor = page["next_cursor"] if i % 50 else None
    return first, deep


def run() -> list[Table]:
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as data_dir:
        stack = LocalStack(save_state=False, say=lambda _: None)
        stack.start(
            port_moto=free_port(), port_api=free_port(), data_dir=Path(data_dir), seed=True, restore=False
        )
        try:
            return _measure(stack, process)
        finally:
            stack.stop()


def _measure(stack: LocalStack, process: psutil.Process) -> list[Table]:
    assert stack.resources is not None
    admin = next(u for u in DEMO_USERS if u.role == "admin")
    annotator = next(u for u in DEMO_USERS if u.role == "annotator")
    admin_token, annotator_token = id_token(stack.resources, admin), id_token(stack.resources, annotator)
    annotator_id = user_id_of(stack.resources, annotator)

    def new_project() -> str:
        """A project the annotator is a member of (non-members get 404 from its task list)."""
        project_id = str(call_api(stack.api_url, admin_token, "POST", "/projects", PROJECT)["project_id"])
        member = {"user_id": annotator_id, "role": "annotator"}
        call_api(stack.api_url, admin_token, "POST", f"/projects/{project_id}/members", member)
        return project_id

    table_name = stack.spec.tables["tasks"].name
    bucket = stack.spec.buckets["data"].name
    s3 = boto3.client("s3")
    ingest = Table(
        "Ingest on the local stack (upload to all tasks visible)",
        [
            "lines",
            "seconds",
            "tasks/s",
            "raw BatchWriteItem items/s",
            "% of raw",
            "requests/task",
            "floor",
            "x floor",
            "peak RSS MiB",
        ],
    )
    listing = Table(
        "List page latency, GET /projects/{id}/tasks?limit=50 via the local gateway, event pollers stopped (ms)",
        [
            "tasks in project",
            "tasks in table",
            "first page p50",
            "first page p99",
            "deep page p50",
            "deep page p99",
        ],
    )
    small = new_project()
    s3.put_object(Bucket=bucket, Key=f"projects/{small}/small.jsonl", Body=_manifest(1_000))
    wait_for_import(stack.api_url, admin_token, small)
    for size in SIZES:
        project_id = new_project()
        raw_rate = raw_batch_write_rate(table_name, size)
        body = _manifest(size)
        with metered() as calls:
            start = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"projects/{project_id}/bench-{size}.jsonl", Body=body)
            record = wait_for_import(stack.api_url, admin_token, project_id)
            seconds = time.perf_counter() - start
        assert record["tasks_created"] == size, record
        ingest_calls = calls.of_function("ingest")
        dynamo_and_s3 = sum(n for name, n in ingest_calls.items() if name.split(":")[0] in {"dynamodb", "s3"})
        per_task = dynamo_and_s3 / size
        floor = 1 / 25
        ingest.add(
            f"{size:,}",
            f"{seconds:.1f}",
            f"{size / seconds:,.0f}",
            f"{raw_rate:,.0f}",
            f"{100 * (size / seconds) / raw_rate:.0f}%",
            f"{per_task:.4f}",
            f"{floor:.4f}",
            f"{per_task / floor:.2f}",
            f"{process.memory_info().rss / 2**20:.0f}",
        )
    # On AWS the API runs apart from the stream consumers; here they share one process, so the
    # pollers (still publishing an event per task) are stopped to measure the API path alone.
    stack.stop_pollers()
    items_in_table = boto3.client("dynamodb").describe_table(TableName=table_name)["Table"]["ItemCount"]
    largest = project_id
    for label, listed in (("1,000", small), (f"{SIZES[-1]:,}", largest)):
        first, deep = _list_latency(stack, annotator_token, listed)
        listing.add(
            label,
            f"{items_in_table:,}",
            f"{percentile(first, 50):.1f}",
            f"{percentile(first, 99):.1f}",
            f"{percentile(deep, 50):.1f}",
            f"{percentile(deep, 99):.1f}",
        )
    memory = Table("Local stack memory", ["what", "MiB"])
    memory.add(
        f"RSS with {sum(SIZES) + 1000:,} tasks loaded (stack + bench driver, one process)",
        f"{process.memory_info().rss / 2**20:.0f}",
    )
    return [ingest, listing, memory]


if __name__ == "__main__":
    os.environ.setdefault("SERVAL_QUIET", "1")
    for table in run():
        print(table.render())
