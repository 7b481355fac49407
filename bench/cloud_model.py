"""Cloud cost and capacity model: measured inputs from the local stack, published prices and quotas.

``python -m bench.cloud_model`` (and ``make bench``) runs two measurements on the local stack,
its real handlers run in the launcher process (the in-process Lambda runtime, so
:mod:`bench.metering` sees and attributes every AWS call, and each invocation's handler CPU
time is read with ``time.thread_time``):

- **a task's whole life** (:func:`bench.flow.lifecycle_run`): manifest upload → ingest →
  events → starter → the real state machine (moto's Step Functions) → lease → submit → review
  → ExportRecord → EmitCompleted → a JSONL export. Per task: AWS requests by service and
  operation, DynamoDB request units (:mod:`bench.capacity`), Lambda invocations, CPU and wall
  time by function, Step Functions state transitions (``*StateEntered`` events in each
  execution's history), EventBridge entries, SQS requests;
- **a ranged import**: a manifest several times ``ingest_range_bytes`` (64 KiB here) imported
  by the ingest and ingest-ranges functions. Per line: CPU, AWS requests, bytes; and the stored
  size of a task item.

:func:`model` (pure: inputs → rows) combines them with :data:`CONSTANTS` into the time to
ingest 1M objects (with byte ranges), the sustained annotators supported, the dollars per
1,000 task lifecycles and the quota that binds first. docs/benchmarks.md, "Cloud cost and
capacity model", has the figures and the reasoning. Sizes: ``BENCH_CLOUD_TASKS`` (default 50)
lifecycles and ``BENCH_CLOUD_LINES`` (default 3,000) manifest lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.report import Table

SAMPLE_RANGE_BYTES = 64 * 2**10  # the ranged import's range size: the smallest the config allows


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    kind: Literal["price", "quota", "assumption"]
    source: str


_PRICING = "AWS pricing page, us-east-1"
_SFN_QUOTAS = (
    "AWS Step Functions Developer Guide, Quotas, Standard workflows in us-east-1 "
    "(awsdocs/aws-step-functions-developer-guide, doc_source/limits-overview.md)"
)
# Every price and default quota the model uses, and the assumptions it makes, in one table.
# Prices and quotas are as AWS published them for us-east-1 in 2025 (the latest versions read
# for this model, 2026-12-04); they change: check the pricing pages and your account's Service
# Quotas before relying on the results. Quotas are soft unless said otherwise.
CONSTANTS: dict[str, Constant] = {
    # prices (USD)
    "lambda_gb_s": Constant(
        0.0000133334, "$ per GB-second, arm64", "price", f"{_PRICING} (aws.amazon.com/lambda/pricing)"
    ),
    "lambda_request": Constant(
        0.20e-6, "$ per request", "price", f"{_PRICING} (aws.amazon.com/lambda/pricing)"
    ),
    "sfn_transition": Constant(
        0.025e-3,
        "$ per state transition, Standard",
        "price",
        f"{_PRICING} (aws.amazon.com/step-functions/pricing)",
    ),
    "ddb_wru": Constant(
        0.625e-6,
        "$ per write request unit, on-demand",
        "price",
        f"{_PRICING} (aws.amazon.com/dynamodb/pricing/on-demand)",
    ),
    "ddb_rru": Constant(
        0.125e-6,
        "$ per read request unit, on-demand",
        "price",
        f"{_PRICING} (aws.amazon.com/dynamodb/pricing/on-demand)",
    ),
    "sqs_request": Constant(
        0.40e-6, "$ per request, standard queue", "price", f"{_PRICING} (aws.amazon.com/sqs/pricing)"
    ),
    "eventbridge_event": Constant(
        1.00e-6, "$ per custom event published", "price", f"{_PRICING} (aws.amazon.com/eventbridge/pricing)"
    ),
    "s3_put": Constant(
        0.005e-3, "$ per PUT, COPY, POST or LIST request", "price", f"{_PRICING} (aws.amazon.com/s3/pricing)"
    ),
    "s3_get": Constant(
        0.0004e-3, "$ per GET or other request", "price", f"{_PRICING} (aws.amazon.com/s3/pricing)"
    ),
    "apigw_request": Constant(
        3.50e-6,
        "$ per REST API request (first 333M a month)",
        "price",
        f"{_PRICING} (aws.amazon.com/api-gateway/pricing)",
    ),
    # default quotas (per account and region unless said otherwise)
    "lambda_concurrency": Constant(
        1_000, "concurrent executions", "quota", "AWS Lambda Developer Guide, Lambda quotas"
    ),
    "sfn_transitions_per_s": Constant(
        1_500, "state transitions/s (refill; bucket 5,000)", "quota", _SFN_QUOTAS
    ),
    "sfn_start_execution_per_s": Constant(
        300, "StartExecution/s (refill; bucket 1,300)", "quota", _SFN_QUOTAS
    ),
    "sfn_send_task_success_per_s": Constant(
        500, "SendTaskSuccess/s (refill; bucket 3,000)", "quota", _SFN_QUOTAS
    ),
    "ddb_partition_wcu": Constant(
        1_000,
        "write units/s per partition (hard)",
        "quota",
        "Amazon DynamoDB Developer Guide, Partitions and data distribution; throttling: key range throughput exceeded",
    ),
    "ddb_table_wru_per_s": Constant(
        40_000,
        "write request units/s per on-demand table",
        "quota",
        "Amazon DynamoDB Developer Guide, Service quotas: throughput for on-demand tables",
    ),
    "apigw_account_rps": Constant(
        10_000,
        "requests/s (burst 5,000) across the account's APIs",
        "quota",
        "Amazon API Gateway Developer Guide, quotas: throttle quota per account per Region",
    ),
    "eventbridge_putevents_per_s": Constant(
        10_000,
        "PutEvents requests/s",
        "quota",
        "Amazon EventBridge User Guide, quotas: PutEvents throttle limit (us-east-1)",
    ),
    "lambda_mb_per_vcpu": Constant(
        1_769,
        "MB of memory that come with one vCPU",
        "quota",
        "AWS Lambda Developer Guide, memory and computing power (CPU is allocated in proportion to memory)",
    ),
    # assumptions (not published: what the model assumes)
    "cpu_speed": Constant(
        1.0,
        "a Lambda vCPU's speed / the measuring machine's core's",
        "assumption",
        "unmeasured: a Graviton vCPU taken as fast as one core of the 2-core development machine",
    ),
    "aws_call_latency_s": Constant(
        0.008,
        "s a function waits per AWS call, in the region",
        "assumption",
        "typical single-digit-ms DynamoDB, low-ms SQS/Step Functions round trips; local moto latency is not AWS's",
    ),
    "seconds_per_annotation": Constant(
        30.0,
        "s an annotator spends per task",
        "assumption",
        "a classification or short-text task; reviewers come on top",
    ),
    "status_partition_writes_per_task": Constant(
        2.0,
        "index writes per task on one status partition",
        "assumption",
        "a task enters and leaves each status partition of GSI1 once (time-ordered keys: one hot end)",
    ),
}


@dataclass(frozen=True)
class Lifecycle:
    """What one task's whole life costs, per task (measured)."""

    tasks: int  # the sample
    requests: Mapping[str, float]  # "service:Operation" -> calls per task, made by the functions
    calls_by_function: Mapping[str, float]  # function -> AWS calls per task
    invocations: Mapping[str, float]  # function -> invocations per task
    cpu_s: Mapping[str, float]  # function -> handler CPU seconds per task
    wall_s: Mapping[str, float]  # function -> local handler wall seconds per task (moto's latency)
    memory_mb: Mapping[str, int]  # function -> configured memory
    transitions: float  # Step Functions state transitions per task
    wru: float  # DynamoDB write request units per task (both tables)
    rru: float  # DynamoDB read request units per task
    busiest_table_wru: float  # the write units per task of the table written most
    # the item every task of a project shares that is written most (by SK kind: the window
    # counter, one of the 8 counter shards, the project), and its write units per task
    hottest_item: str
    hottest_item_wru: float
    events: float  # EventBridge entries published per task
    sqs_requests: float  # sends by the functions, receives with messages and deletes by the pollers
    s3_put: float
    s3_get: float
    wru_by_function: Mapping[str, float] = field(default_factory=dict)
    wru_by_table: Mapping[str, float] = field(default_factory=dict)

    def per_task(self, name: str) -> float:
        return float(self.requests.get(name, 0.0))


@dataclass(frozen=True)
class Ingest:
    """A ranged manifest import, per line (measured)."""

    lines: int
    ranges: int
    bytes_per_line: float
    cpu_s_per_line: float  # the ingest and ingest-ranges functions' handler CPU
    requests_per_line: float  # their AWS calls
    wall_s_per_line: float  # local, moto's latency included
    task_item_bytes: float  # a task item as stored


@dataclass(frozen=True)
class Scenario:
    """What the model is asked about; design settings come from infra/config.py (prod)."""

    objects: int = 1_000_000
    range_bytes: int = 16 * 2**20
    range_concurrency: int = 20
    range_memory_mb: int = 1024
    api_rate_limit: int = 200

    @classmethod
    def from_config(cls) -> Scenario:
        from infra.config import load
        from infra.spec import build

        prod = load("prod")
        spec = build(prod, "123456789012", prod.region)
        return cls(
            range_bytes=prod.ingest_range_bytes,
            range_concurrency=prod.ingest_range_concurrency,
            range_memory_mb=spec.functions["ingest-ranges"].memory_mb,
            api_rate_limit=prod.api_rate_limit,
        )


@dataclass(frozen=True)
class Row:
    section: str
    what: str
    value: float
    unit: str
    basis: str = ""


# How the design raises or avoids each limit when it binds first (shown with the binding one).
REMEDIES: dict[str, str] = {
    "API stage throttle (api_rate_limit)": "Serval's own setting (infra/config.py): raise api_rate_limit/api_burst_limit "
    "per environment, up to the account's API Gateway quota; the per-client WAF limits stay",
    "API Gateway (account)": "a soft quota: request an increase; lease and submit are one request each, nothing polls",
    "Lambda concurrency (account)": "a soft quota: request an increase; the SQS-fed functions have max_concurrency, "
    "so a backlog queues instead of starving the API",
    "Step Functions state transitions (account)": "a soft quota: request an increase; one Standard execution per task "
    "with only its Task and Choice states (no polling or Wait loops), started from a throttled queue",
    "Step Functions StartExecution (account)": "the executions queue and the starter's max_concurrency meter "
    "StartExecution; a soft quota beyond that",
    "Step Functions SendTaskSuccess (account)": "two callbacks per task (submit, review); a soft quota: request an increase",
    "EventBridge PutEvents (account)": "events are published 10 per PutEvents; a soft quota beyond that",
    "DynamoDB on-demand table throughput": "a soft quota per table: request an increase",
    "DynamoDB busiest item of a project": "one item takes at most 1,000 write units/s, a hard limit: shard that item "
    "(the project's window counter) to go past it; other projects are unaffected",
    "DynamoDB status partition of a project (GSI1)": "a project's tasks of one status share one GSI1 partition with a "
    "time-ordered key: shard the status partition key to go past it; other projects are unaffected",
    "Lambda time (ranges in parallel)": "raise ingest_range_concurrency (infra/config.py), or smaller ingest_range_bytes",
    "DynamoDB index partitions of a project (GSI1 new, GSI2)": "a project's new tasks go to one GSI1 and one GSI2 "
    "partition with time-ordered keys (1,000 write units/s each, which splitting cannot spread): BatchWriteItem "
    "retries throttled items, so ingest slows instead of failing; shard those partition keys, or import into "
    "several projects, to go faster",
}


def _units(size_bytes: float, unit: int = 1024) -> int:
    return max(1, math.ceil(size_bytes / unit))


def lambda_cpu_s(cpu_s: float, memory_mb: float, constants: Mapping[str, float]) -> float:
    """Measured CPU seconds as a Lambda of ``memory_mb`` spends them: below one vCPU's memory the
    function gets that fraction of a vCPU, so CPU-bound work takes longer."""
    share = min(1.0, memory_mb / constants["lambda_mb_per_vcpu"])
    return cpu_s / share / constants["cpu_speed"]


def lambda_seconds(life: Lifecycle, constants: Mapping[str, float]) -> dict[str, float]:
    """Estimated billed duration per task by function: its CPU (at its memory's share of a
    vCPU) plus its AWS calls' waits."""
    names = set(life.cpu_s) | set(life.calls_by_function)
    return {
        f: lambda_cpu_s(life.cpu_s.get(f, 0.0), life.memory_mb.get(f, 1024), constants)
        + life.calls_by_function.get(f, 0.0) * constants["aws_call_latency_s"]
        for f in names
    }


def model(
    life: Lifecycle,
    ingest: Ingest,
    scenario: Scenario,
    constants: Mapping[str, Constant] = CONSTANTS,
) -> list[Row]:
    """The model's rows: pure arithmetic on measured inputs, the scenario and the constants."""
    c = {k: v.value for k, v in constants.items()}
    rows: list[Row] = []

    # ---- dollars per 1,000 task lifecycles
    seconds = lambda_seconds(life, c)
    gb_s = sum(s * life.memory_mb.get(f, 1024) / 1024 for f, s in seconds.items())
    costs = {
        "Lambda requests": sum(life.invocations.values()) * c["lambda_request"],
        "Lambda duration": gb_s * c["lambda_gb_s"],
        "Step Functions transitions": life.transitions * c["sfn_transition"],
        "DynamoDB writes": life.wru * c["ddb_wru"],
        "DynamoDB reads": life.rru * c["ddb_rru"],
        "SQS requests": life.sqs_requests * c["sqs_request"],
        "EventBridge events": life.events * c["eventbridge_event"],
        "S3 requests": life.s3_put * c["s3_put"] + life.s3_get * c["s3_get"],
        "API Gateway requests": life.invocations.get("api", 0.0) * c["apigw_request"],
    }
    for name, per_task in costs.items():
        rows.append(Row("cost", name, per_task * 1000, "$ / 1,000 lifecycles"))
    rows.append(Row("cost", "total", sum(costs.values()) * 1000, "$ / 1,000 lifecycles", "the sum above"))

    # ---- ingesting ``objects`` (a manifest of that many lines) with byte ranges
    per_line_s = (
        lambda_cpu_s(ingest.cpu_s_per_line, scenario.range_memory_mb, c)
        + ingest.requests_per_line * c["aws_call_latency_s"]
    )
    size = scenario.objects * ingest.bytes_per_line
    step = max(scenario.range_bytes, math.ceil(size / 10_000))
    ranges = max(1, math.ceil(size / step))
    parallel = min(ranges, scenario.range_concurrency, int(c["lambda_concurrency"]))
    waves = math.ceil(ranges / parallel)
    lambda_bound = waves * (scenario.objects / ranges) * per_line_s
    task_units = _units(ingest.task_item_bytes)
    ddb_bound = scenario.objects * task_units / c["ddb_partition_wcu"]
    rows += [
        Row(
            "ingest",
            "one invocation, no ranges",
            scenario.objects * per_line_s,
            "s",
            f"objects x {per_line_s * 1000:.2f} ms per line (CPU at {scenario.range_memory_mb} MB + calls x latency)",
        ),
        Row(
            "ingest",
            "byte ranges",
            ranges,
            "ranges",
            f"{size / 2**20:,.0f} MiB in ranges of {step / 2**20:,.0f} MiB",
        ),
        Row(
            "ingest",
            "ranges at once",
            parallel,
            "invocations",
            "min(ranges, ingest_range_concurrency, Lambda concurrency)",
        ),
        Row("ingest", "Lambda time (ranges in parallel)", lambda_bound, "s", f"{waves} wave(s) of ranges"),
        Row(
            "ingest",
            "DynamoDB index partitions of a project (GSI1 new, GSI2)",
            ddb_bound,
            "s",
            f"{task_units} write unit(s) per task on each, 1,000 units/s",
        ),
    ]
    bound = max(lambda_bound, ddb_bound)
    ingest_binding = (
        "Lambda time (ranges in parallel)"
        if lambda_bound >= ddb_bound
        else ("DynamoDB index partitions of a project (GSI1 new, GSI2)")
    )
    rows.append(
        Row(
            "ingest",
            f"time to ingest {scenario.objects:,} objects",
            bound,
            "s",
            f"bound by: {ingest_binding}",
        )
    )

    # ---- sustained task lifecycles per second under each limit
    lambda_per_task = sum(seconds.values())
    account = {
        "Lambda concurrency (account)": (c["lambda_concurrency"], lambda_per_task, "Lambda-seconds per task"),
        "Step Functions state transitions (account)": (
            c["sfn_transitions_per_s"],
            life.transitions,
            "transitions per task",
        ),
        "Step Functions StartExecution (account)": (
            c["sfn_start_execution_per_s"],
            life.per_task("stepfunctions:StartExecution"),
            "StartExecution per task",
        ),
        "Step Functions SendTaskSuccess (account)": (
            c["sfn_send_task_success_per_s"],
            life.per_task("stepfunctions:SendTaskSuccess"),
            "SendTaskSuccess per task",
        ),
        "API Gateway (account)": (
            c["apigw_account_rps"],
            life.invocations.get("api", 0.0),
            "API requests per task",
        ),
        "API stage throttle (api_rate_limit)": (
            float(scenario.api_rate_limit),
            life.invocations.get("api", 0.0),
            "API requests per task",
        ),
        "EventBridge PutEvents (account)": (
            c["eventbridge_putevents_per_s"],
            life.per_task("events:PutEvents"),
            "PutEvents per task",
        ),
        "DynamoDB on-demand table throughput": (
            c["ddb_table_wru_per_s"],
            life.busiest_table_wru,
            "write units per task on the busiest table",
        ),
    }
    project = {
        "DynamoDB busiest item of a project": (
            c["ddb_partition_wcu"],
            life.hottest_item_wru,
            f"write units per task on {life.hottest_item}",
        ),
        "DynamoDB status partition of a project (GSI1)": (
            c["ddb_partition_wcu"],
            c["status_partition_writes_per_task"] * task_units,
            "index write units per task",
        ),
    }
    limits: dict[str, float] = {}
    for scope, table in (("account", account), ("project", project)):
        for name, (quota, per_task, per) in table.items():
            if per_task <= 0:
                continue
            limits[name] = quota / per_task
            rows.append(
                Row(
                    f"limit ({scope})",
                    name,
                    quota / per_task,
                    "lifecycles/s",
                    f"{quota:,.0f} / {per_task:.3g} {per}",
                )
            )
    pace = c["seconds_per_annotation"]
    account_limits = {k: v for k, v in limits.items() if k in account}
    for label, pool in (("across projects", account_limits), ("in one project", limits)):
        name = min(pool, key=lambda k: pool[k])
        rows.append(
            Row(
                "capacity",
                f"sustained annotators {label}",
                pool[name] * pace,
                "annotators",
                f"{pool[name]:,.1f} lifecycles/s x {pace:.0f} s per task; binds first: {name}",
            )
        )
    return rows


def binding(rows: list[Row], label: str) -> str:
    """The limit named in a capacity row's basis (``binds first: ...``)."""
    row = next(r for r in rows if r.section == "capacity" and r.what.endswith(label))
    return row.basis.rsplit("binds first: ", 1)[1]


def render(rows: list[Row], life: Lifecycle, ingest: Ingest) -> list[Table]:
    model_table = Table(
        f"Cloud model (us-east-1): {life.tasks} measured lifecycles, a {ingest.lines:,}-line import in {ingest.ranges} ranges",
        ["section", "what", "value", "unit", "basis"],
    )
    for row in rows:
        value = (
            f"{row.value:,.4f}"
            if row.unit.startswith("$")
            else f"{row.value:,.1f}"
            if row.value < 100
            else f"{row.value:,.0f}"
        )
        model_table.add(row.section, row.what, value, row.unit, row.basis)
    for label in ("across projects", "in one project"):
        name = binding(rows, label)
        model_table.add("binds first", label, name, "", REMEDIES.get(name, ""))
    ingest_name = next(r for r in rows if r.what.startswith("time to ingest")).basis.removeprefix(
        "bound by: "
    )
    model_table.add("binds first", "ingest", ingest_name, "", REMEDIES.get(ingest_name, ""))
    inputs = Table(
        "Cloud model inputs measured on the local stack (per task; handlers in-process)",
        ["function", "invocations", "AWS calls", "CPU ms", "local wall ms", "memory MB", "WRU"],
    )
    for function in sorted(set(life.invocations) | set(life.calls_by_function)):
        inputs.add(
            function,
            f"{life.invocations.get(function, 0):.2f}",
            f"{life.calls_by_function.get(function, 0):.2f}",
            f"{life.cpu_s.get(function, 0) * 1000:.1f}",
            f"{life.wall_s.get(function, 0) * 1000:.1f}",
            life.memory_mb.get(function, ""),
            f"{life.wru_by_function.get(function, 0):.1f}",
        )
    inputs.add(
        "(task)",
        f"transitions {life.transitions:.1f}",
        f"WRU {life.wru:.1f} / RRU {life.rru:.1f}",
        f"events {life.events:.1f}",
        f"SQS {life.sqs_requests:.1f}",
        f"busiest shared item {life.hottest_item}: {life.hottest_item_wru:.1f} WRU",
        "; ".join(f"{t}: {w:.1f}" for t, w in sorted(life.wru_by_table.items())),
    )
    inputs.add(
        "(ingest line)",
        f"{ingest.bytes_per_line:.0f} bytes",
        f"{ingest.requests_per_line:.3f}",
        f"{ingest.cpu_s_per_line * 1000:.3f}",
        f"{ingest.wall_s_per_line * 1000:.3f}",
        f"task item {ingest.task_item_bytes:.0f} B",
        "",
    )
    constants = Table(
        "Cloud model constants (one table: bench/cloud_model.py CONSTANTS)",
        ["name", "value", "unit", "kind", "source"],
    )
    for name, constant in CONSTANTS.items():
        constants.add(name, f"{constant.value:g}", constant.unit, constant.kind, constant.source)
    return [model_table, inputs, constants]


# ---- measurement on the local stack ------------------------------------------------------------


@dataclass
class Invocations:
    """Every in-process invocation: count, handler CPU (thread time) and wall time, by function."""

    names: Mapping[str, str]  # function name -> spec id
    count: Counter[str] = field(default_factory=Counter)
    cpu_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, function_name: str, cpu_s: float, wall_s: float) -> None:
        function = self.names.get(function_name, function_name)
        with self._lock:
            self.count[function] += 1
            self.cpu_s[function] += cpu_s
            self.wall_s[function] += wall_s

    def snapshot(self) -> tuple[Counter[str], dict[str, float], dict[str, float]]:
        with self._lock:
            return Counter(self.count), dict(self.cpu_s), dict(self.wall_s)


def _is_poll(event: Any) -> bool:
    """An API request the bench makes only to wait (a GET): left out, as bench.flow leaves out its calls."""
    if isinstance(event, (str, bytes)):
        try:
            event = json.loads(event or b"{}")
        except ValueError:
            return False
    return isinstance(event, dict) and event.get("httpMethod") == "GET"


@contextmanager
def _in_process(stack: Any) -> Iterator[Invocations]:
    """Run the stack's functions in this process (metered), timing each invocation."""
    from infra.local import lambda_runtime, patches

    recorder = Invocations({f.name: f.id for f in stack.spec.functions.values()})
    original = lambda_runtime.invoke

    def timed(fn: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return original(fn, event, *args, **kwargs)
        finally:
            if not (fn.function_name.endswith("-api") and _is_poll(event)):
                recorder.record(fn.function_name, time.thread_time() - cpu, time.perf_counter() - wall)

    lambda_runtime.invoke = timed
    patches.use_runtime(None)
    try:
        yield recorder
    finally:
        patches.use_runtime(stack.runtime)
        lambda_runtime.invoke = original


S3_PUT_OPERATIONS = frozenset(
    {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"}
)
S3_GET_OPERATIONS = frozenset({"GetObject", "HeadObject"})


@dataclass
class _Tally:
    """What the observer counts besides request units: events, SQS and S3 requests billed."""

    events: int = 0
    sqs: int = 0
    s3_put: int = 0
    s3_get: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(
        self, caller: str, service: str, operation: str, params: dict[str, Any], response: Any
    ) -> None:
        with self._lock:
            if caller != "-":
                if service == "events" and operation == "PutEvents":
                    self.events += len(params.get("Entries", []))
                elif service == "sqs":
                    self.sqs += 1
                elif service == "s3":
                    self.s3_put += operation in S3_PUT_OPERATIONS
                    self.s3_get += operation in S3_GET_OPERATIONS
            elif service == "sqs" and (
                operation.startswith("DeleteMessage")
                or (operation == "ReceiveMessage" and (response or {}).get("Messages"))
            ):
                self.sqs += 1  # the pollers: Lambda's event-source mappings on AWS (idle polls left out)


def _observer(*observers: Callable[[str, str, str, dict[str, Any], Any], None]) -> Callable[..., None]:
    def observe(*args: Any) -> None:
        for observer in observers:
            observer(*args)

    return observe


def _shapes(project_id: str, tables: list[str]) -> dict[tuple[str, str], Any]:
    import boto3

    from bench.capacity import shape_of
    from serval import keys

    client, shapes = boto3.client("dynamodb"), {}
    for table in tables:
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.project_pk(project_id)}},
        }
        while True:
            page = client.query(**request)
            for item in page["Items"]:
                shapes[(item[keys.PK]["S"], item[keys.SK]["S"])] = shape_of(item)
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return shapes


def _transitions(machine_arn: str) -> tuple[int, int]:
    """(state transitions, executions) of the state machine's succeeded executions."""
    import boto3

    sfn = boto3.client("stepfunctions")
    entered = executions = 0
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine_arn, statusFilter="SUCCEEDED"
    ):
        for execution in page["executions"]:
            executions += 1
            for history in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution["executionArn"]
            ):
                entered += sum(1 for e in history["events"] if e["type"].endswith("StateEntered"))
    return entered, executions


# Items every task of a project writes: its window counter, its counter shards, the project.
# (An activity or quality item is one user's: its load is bounded by that user's pace.)
SHARED_KINDS = ("WINDOW", "COUNTER", "PROJECT")


def _busiest_shared_item(
    by_item: Mapping[tuple[str, str], float], project_id: str, n: int
) -> tuple[str, float]:
    """The kind of shared item written most per item, and its write units per task."""
    from serval import keys

    loads: defaultdict[str, list[float]] = defaultdict(list)
    for (pk, sk), units in by_item.items():
        kind = sk.split("#", 1)[0]
        if pk == keys.project_pk(project_id) and kind in SHARED_KINDS:
            loads[kind].append(units)
    per_item = {kind: sum(v) / len(v) / n for kind, v in loads.items()}
    kind = max(per_item, key=lambda k: per_item[k])
    return kind, per_item[kind]


def _measure_lifecycle(stack: Any, invocations: Invocations, n: int) -> Lifecycle:
    from bench import flow
    from bench.capacity import CapacityLog

    admin, annotator, reviewer = (flow._demo(stack, role) for role in ("admin", "annotator", "reviewer"))
    capacity, tally = CapacityLog(), _Tally()
    before = invocations.snapshot()
    run = flow.lifecycle_run(stack, admin, annotator, reviewer, n, _observer(capacity.observe, tally.observe))
    after = invocations.snapshot()
    spec = stack.spec
    units = capacity.units(_shapes(run.project_id, [t.name for t in spec.tables.values()]))
    calls_by_function: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    for (caller, name), made in run.calls.by_function.items():
        if caller == "-":
            continue
        count = made - run.polls.excluded[name] if caller == "api" else made
        calls_by_function[caller] += count
        requests[name] += count
    callers = [f for f in calls_by_function if f != "-"]
    hottest_item, hottest_item_wru = _busiest_shared_item(units.write_by_item, run.project_id, n)
    entered, executions = _transitions(stack.resources.state_machine_arns["task"])
    return Lifecycle(
        tasks=n,
        requests={k: v / n for k, v in requests.items()},
        calls_by_function={k: v / n for k, v in calls_by_function.items()},
        invocations={k: (after[0][k] - before[0].get(k, 0)) / n for k in after[0]},
        cpu_s={k: (after[1][k] - before[1].get(k, 0.0)) / n for k in after[1]},
        wall_s={k: (after[2][k] - before[2].get(k, 0.0)) / n for k in after[2]},
        memory_mb={f.id: f.memory_mb for f in spec.functions.values()},
        transitions=entered / max(executions, 1),
        wru=units.total_write(callers) / n,
        rru=units.total_read(callers) / n,
        busiest_table_wru=max(units.write_by_table.values()) / n,
        hottest_item=hottest_item,
        hottest_item_wru=hottest_item_wru,
        events=tally.events / n,
        sqs_requests=tally.sqs / n,
        s3_put=tally.s3_put / n,
        s3_get=tally.s3_get / n,
        wru_by_function={f: units.write[f] / n for f in callers},
        wru_by_table={t: w / n for t, w in units.write_by_table.items()},
    )


def _measure_ingest(stack: Any, invocations: Invocations, lines: int) -> Ingest:
    import boto3

    from bench import flow
    from bench.metering import metered
    from infra.local.seed import call_api
    from serval.adapters.dynamo import item_size

    admin = flow._demo(stack, "admin")
    project_id = flow._project(stack, admin.token, "text", flow.TEXT_LABELS, [])
    manifest = "\n".join(
        json.dumps({"data": {"text": f"review number {i}: the product was fine"}, "metadata": {"n": i}})
        for i in range(lines)
    ).encode()
    before = invocations.snapshot()
    with metered() as calls:
        boto3.client("s3").put_object(
            Bucket=stack.spec.buckets["data"].name, Key=f"projects/{project_id}/ranged.jsonl", Body=manifest
        )
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            page = call_api(stack.api_url, admin.token, "GET", f"/projects/{project_id}/imports?limit=1")
            if page["items"] and page["items"][0]["status"] != "running":
                record = page["items"][0]
                break
            time.sleep(0.2)
        else:
            raise TimeoutError("the ranged import did not finish")
    after = invocations.snapshot()
    assert record["tasks_created"] == lines, record
    functions = ("ingest", "ingest-ranges")
    cpu = sum(after[1].get(f, 0.0) - before[1].get(f, 0.0) for f in functions)
    wall = sum(after[2].get(f, 0.0) - before[2].get(f, 0.0) for f in functions)
    made = sum(sum(calls.of_function(f).values()) for f in functions)
    items = boto3.client("dynamodb").query(
        TableName=stack.spec.tables["tasks"].name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :task)",
        ExpressionAttributeValues={":pk": {"S": f"PROJECT#{project_id}"}, ":task": {"S": "TASK#"}},
        Limit=200,
    )["Items"]
    return Ingest(
        lines=lines,
        ranges=int(record["ranges_total"]),
        bytes_per_line=len(manifest) / lines,
        cpu_s_per_line=cpu / lines,
        requests_per_line=made / lines,
        wall_s_per_line=wall / lines,
        task_item_bytes=sum(item_size(i) for i in items) / max(len(items), 1),
    )


def measure(tasks: int, lines: int) -> tuple[Lifecycle, Ingest]:
    """Both measurements, on one local stack whose ranges are 64 KiB."""
    from bench import flow
    from infra.config import load
    from infra.local import seed as seeding
    from infra.local.moto_server import ACCOUNT_ID, REGION, free_port
    from infra.local.stack import LocalStack
    from infra.spec import build

    flow._forget_clients()
    # ranges of 64 KiB; an active window just above the sample, so the ranged import's tasks
    # do not start a thousand executions
    config = load("local").model_copy(
        update={"ingest_range_bytes": SAMPLE_RANGE_BYTES, "active_window": tasks + 10}
    )
    spec = build(config, ACCOUNT_ID, REGION)
    with tempfile.TemporaryDirectory() as data_dir:
        stack = LocalStack(spec=spec, save_state=False, say=lambda _: None)
        stack.start(
            port_moto=free_port(), port_api=free_port(), data_dir=Path(data_dir), seed=False, restore=False
        )
        try:
            # the demo users, without the demo project: nothing else runs while it is measured
            assert stack.resources is not None
            seeding.seed(stack.spec, stack.resources, stack.api_url, with_project=False, say=lambda _: None)
            with _in_process(stack) as invocations:
                life = _measure_lifecycle(stack, invocations, tasks)
                ingest = _measure_ingest(stack, invocations, lines)
        finally:
            stack.stop()
    return life, ingest


def run() -> list[Table]:
    tasks = int(os.environ.get("BENCH_CLOUD_TASKS", "50"))
    lines = int(os.environ.get("BENCH_CLOUD_LINES", "3000"))
    # the handlers run in this process: their metric lines (EMF on stdout, and Powertools'
    # warnings about empty ones) stay out of the tables
    # (and moto's errors for executions still running when the stack stops)
    moto_sfn = logging.getLogger("moto.stepfunctions.parser")
    level = moto_sfn.level
    moto_sfn.setLevel(logging.CRITICAL)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            life, ingest = measure(tasks, lines)
    finally:
        moto_sfn.setLevel(level)
    return render(model(life, ingest, Scenario.from_config()), life, ingest)


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    for table in run():
        print(table.render(), flush=True)
