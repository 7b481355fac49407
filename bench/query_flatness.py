"""Query latency against table size, with the local stack's DynamoDB patches and with moto's own code.

``python -m bench.query_flatness`` loads one project's tasks (one base-table
partition, one GSI1 status partition: the worst case) at 1k, 10k and 100k items
and times, through boto3 against in-process moto:

- a ``Limit=50`` page of the base table (``begins_with(SK, "TASK#")``) and of GSI1,
  first page and a deep page (``ExclusiveStartKey`` half way through);
- a ``TransactWriteItems`` of a task update plus an audit put (every Serval mutation).

Items are loaded through moto's backend directly (boto3 would take minutes at
100k); every timed call goes through boto3. Patched and unpatched share the same
tables: "moto" runs moto's own ``Table.query``/``transact_write_items``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import boto3
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from infra.local import patches
from infra.local.resources import create_table
from infra.local.stack import local_spec

SIZES = (1_000, 10_000, 100_000)
PROJECT = "PROJECT#bench"
STATUS = f"{PROJECT}#STATUS#new"
TASKS, AUDIT = "bench-tasks", "bench-audit"
PATCHED_SAMPLES = 100
MOTO_BUDGET_S = 4.0  # per measured cell: moto's own code is slow at size, so fewer samples


def task_item(i: int) -> dict[str, Any]:
    created = f"2026-11-28T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i:07d}"
    return {
        "PK": {"S": PROJECT},
        "SK": {"S": f"TASK#{i:07d}"},
        "GSI1PK": {"S": STATUS},
        "GSI1SK": {"S": f"{created}#{i:07d}"},
        "GSI2PK": {"S": f"{PROJECT}#TASKS"},
        "GSI2SK": {"S": f"{created}#{i:07d}"},
        "entity": {"S": "task"},
        "status": {"S": "new"},
        "media": {"M": {"key": {"S": f"projects/bench/img_{i:07d}.png"}, "type": {"S": "image"}}},
    }


def load(upto: int, already: int) -> None:
    table = dynamodb_backends["123456789012"]["us-east-1"].get_table(TASKS)
    for i in range(already, upto):
        table.put_item(task_item(i))


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[int], Any]  # (size) -> boto3 call
    moto_samples_cap: int = 20


def cases(client: Any) -> list[Case]:
    def base(size: int, deep: bool) -> Any:
        params: dict[str, Any] = {
            "TableName": TASKS,
            "KeyConditionExpression": "PK = :p AND begins_with(SK, :t)",
            "ExpressionAttributeValues": {":p": {"S": PROJECT}, ":t": {"S": "TASK#"}},
            "Limit": 50,
        }
        if deep:
            middle = task_item(size // 2)
            params["ExclusiveStartKey"] = {"PK": middle["PK"], "SK": middle["SK"]}
        page = client.query(**params)
        assert len(page["Items"]) == 50
        return page

    def gsi(size: int, deep: bool) -> Any:
        params: dict[str, Any] = {
            "TableName": TASKS,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :s",
            "ExpressionAttributeValues": {":s": {"S": STATUS}},
            "Limit": 50,
        }
        if deep:
            middle = task_item(size // 2)
            params["ExclusiveStartKey"] = {k: middle[k] for k in ("PK", "SK", "GSI1PK", "GSI1SK")}
        page = client.query(**params)
        assert len(page["Items"]) == 50
        return page

    counter = iter(range(10**9))

    def transact(size: int) -> Any:
        n = next(counter)
        task = task_item(n % size)
        return client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TASKS,
                        "Key": {"PK": task["PK"], "SK": task["SK"]},
                        "UpdateExpression": "SET lease_owner = :o",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeValues": {":o": {"S": f"user-{n}"}},
                    }
                },
                {"Put": {"TableName": AUDIT, "Item": {"PK": {"S": PROJECT}, "SK": {"S": f"AUDIT#{n:09d}"}}}},
            ]
        )

    return [
        Case("Query base, first page", lambda size: base(size, deep=False)),
        Case("Query base, deep page", lambda size: base(size, deep=True)),
        Case("Query GSI1, first page", lambda size: gsi(size, deep=False)),
        Case("Query GSI1, deep page", lambda size: gsi(size, deep=True)),
        Case("TransactWriteItems", transact, moto_samples_cap=3),
    ]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(
    call: Callable[[], Any], samples: int, budget_s: float | None, mode: AbstractContextManager[Any]
) -> list[float]:
    """Up to ``samples`` timings in ms; with a budget, stop once it is spent (but take at least 3)."""
    timings: list[float] = []
    started = time.perf_counter()
    with mode:
        while len(timings) < samples:
            if budget_s is not None and len(timings) >= 3 and time.perf_counter() - started > budget_s:
                break
            begin = time.perf_counter()
            call()
            timings.append((time.perf_counter() - begin) * 1000)
    return timings


@contextmanager
def in_process_moto() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        tasks_spec = local_spec().tables["tasks"]
        create_table(client, replace(tasks_spec, name=TASKS))
        create_table(client, replace(local_spec().tables["audit"], name=AUDIT))
        yield client


def main() -> None:
    patches.install()
    rows: list[tuple[str, str, str, str, int]] = []
    flat: dict[str, list[float]] = {}
    try:
        with in_process_moto() as client:
            loaded = 0
            for size in SIZES:
                load(size, loaded)
                loaded = size
                for case in cases(client):

                    def run(case: Case = case, size: int = size) -> Any:
                        return case.call(size)

                    run()  # warm up: the patched index is built by the first Query after a load
                    ours = measure(run, PATCHED_SAMPLES, None, nullcontext())
                    moto = measure(run, case.moto_samples_cap, MOTO_BUDGET_S, patches.moto_semantics())
                    flat.setdefault(case.name, []).append(statistics.median(ours))
                    rows.append(
                        (
                            f"{size:,}",
                            case.name,
                            f"{statistics.median(ours):7.2f} / {percentile(ours, 0.99):7.2f}",
                            f"{statistics.median(moto):8.1f} / {percentile(moto, 0.99):8.1f}",
                            len(moto),
                        )
                    )
    finally:
        patches.uninstall()
    print_table(rows, flat)


def print_table(rows: list[tuple[str, str, str, str, int]], flat: dict[str, list[float]]) -> None:
    print(
        "\nDynamoDB on moto 5.2.5, in process, through boto3 (one project = one partition; latency in ms)\n"
    )
    header = f"{'items':>8}  {'operation':<24}  {'local stack p50 / p99':>21}  {'moto alone p50 / p99':>21}  {'n':>3}"
    print(header)
    print("-" * len(header))
    for size, name, ours, moto, n in rows:
        print(f"{size:>8}  {name:<24}  {ours:>21}  {moto:>21}  {n:>3}")
    print(f"\nlocal stack p50, {SIZES[-1]:,} items vs {SIZES[0]:,} items (flat = about 1x):")
    for name, medians in flat.items():
        print(f"  {name:<24} {medians[-1] / medians[0]:5.2f}x")
    print(
        "\nReads answered by the launcher's fast JSON path (moto's own serializer costs about"
        " 1 ms per returned item); writes and errors still go through moto."
    )


if __name__ == "__main__":
    main()
