"""The raw ``BatchWriteItem`` rate against table size, through moto's HTTP server with the local
stack's patches (target: flat within 1.25x from 1k to 100k items).

The tasks table is created as the local stack creates it (its GSIs and its stream), on a moto
server of its own in this process, and filled by plain 25-item ``BatchWriteItem`` calls over
HTTP. The rate of each 1k-item slice is taken when the table reaches 1k, 10k, 50k and 100k
items. Nothing else runs here: this is moto's write path alone (labelled so); the live stack's
ingest rate, with the event pipeline running, is ``bench/live.py``'s.
"""

from __future__ import annotations

import json
import time

import boto3

from bench.report import Table
from infra.local.moto_server import MotoServer, free_port
from infra.local.patches import moto_semantics
from infra.local.resources import create_table
from infra.local.stack import local_spec

MARKS = (1_000, 10_000, 50_000, 100_000)
SLICE = 1_000
PARTITIONS = 20  # projects the items are spread over, 5k items each at a time


def _slice(client: object, table: str, first: int) -> float:
    """Items/s of writing items ``first`` … ``first + SLICE``."""
    start = time.perf_counter()
    for base in range(first, first + SLICE, 25):
        items = []
        for n in range(base, base + 25):
            project = f"p{(n // 5000) % PARTITIONS}"
            item = {
                "PK": {"S": f"PROJECT#{project}"},
                "SK": {"S": f"TASK#{n:08d}"},
                "entity": {"S": "task"},
                "status": {"S": "new"},
                "data": {"S": json.dumps({"text": f"review {n}: the product was fine"})},
            }
            items.append({"PutRequest": {"Item": item}})
        client.batch_write_item(RequestItems={table: items})  # type: ignore[attr-defined]
    return SLICE / (time.perf_counter() - start)


def run() -> Table:
    table = Table(
        "Raw BatchWriteItem rate against table size: moto's HTTP server with the patches, nothing else running",
        ["items in table", "items/s (1k-item slice)", "slowdown vs 1k", "target"],
    )
    spec = local_spec()
    name = spec.tables["tasks"].name
    with moto_semantics():
        server = MotoServer(port=free_port())
        server.start()
        try:
            client = boto3.client("dynamodb")
            create_table(client, spec.tables["tasks"], stream=True)
            written, first = 0, 0.0
            for mark in MARKS:
                while written + SLICE < mark:
                    _slice(client, name, written)
                    written += SLICE
                rate = _slice(client, name, written)
                written += SLICE
                first = first or rate
                table.add(f"{mark:,}", f"{rate:,.0f}", f"{first / rate:.2f}", "slowdown <= 1.25x")
        finally:
            server.stop()
    return table


if __name__ == "__main__":
    print(run().render())
