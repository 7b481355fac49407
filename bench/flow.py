"""Label → review → export on the local stack.

Measured in one run of the local stack (the same moto server, gateway, handlers and pollers
as `make dev`), through the local API gateway with real Cognito ID tokens:

- **next-task latency**: ``POST /projects/{id}/next`` p50/p99 with 1 annotator and with 8
  concurrent annotators (threads, 8 distinct users), at every size of ``BENCH_SIZES``. Every
  answer must hold a task; empty answers and tasks leased twice are counted and printed.
- **submit throughput**: the 8 annotators submit the tasks they leased, concurrently.
- **export time and peak RSS**: a dataset export job (JSONL and COCO) of every task of an
  image project with one box annotation per task, run by the jobs function through its SQS
  poller; RSS of this process is sampled every 10 ms by a thread while the job runs.
- **AWS requests per task over its whole life**: a manifest upload goes through ingest, the
  tasks stream and the events function, the starter, the real state machine (moto's Step
  Functions with real task tokens), lease and submit, review lease and approve, ExportRecord,
  EmitCompleted and a JSONL export; every botocore call is counted per function
  (:mod:`bench.metering`) and compared with the floor derived in docs/benchmarks.md.

For the queue and export scenarios the event pollers are stopped (as for the list latency in
:mod:`bench.ingest`): on AWS the stream consumers run on other machines, here they would
compete for the GIL. Their tasks are written with BatchWriteItem (``tasks.batch_put``, as an
ingest does) and put into the queue by the Label step's own logic
(``serval.logic.queue.enter_label``) with synthetic task tokens; ``SendTaskSuccess`` is
replaced by a no-op while they run (there is no execution waiting on a synthetic token). The
lifecycle scenario uses the real state machine and the real ``SendTaskSuccess``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psutil

from bench.metering import CallLog, Observer, metered
from bench.report import Table, percentile
from infra.local.moto_server import ACCOUNT_ID, REGION, free_port
from infra.local.pollers import SqsPoller, pollers_for
from infra.local.seed import DEMO_USERS, DemoUser, call_api, create_cognito_user, id_token, user_id_of
from infra.local.stack import LocalStack

SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000,50000").split(","))
LIFECYCLE_TASKS = int(os.environ.get("BENCH_LIFECYCLE_TASKS", "200"))
ANNOTATORS = 8
SINGLE_SAMPLES = 200  # /next calls by one annotator (at most a fifth of the queue)
PER_THREAD_SAMPLES = 50  # /next calls by each of the 8 annotators (at most 1/20 of the queue each)
RSS_EVERY_S = 0.01
LABELS = {
    "controls": [
        {"name": "shape", "type": "classification", "classes": [{"name": "circle"}, {"name": "square"}]},
        {"name": "objects", "type": "bbox", "classes": [{"name": "circle"}, {"name": "square"}]},
    ]
}
TEXT_LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}
POSITIVE = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}
BOX = {
    "control": "objects",
    "type": "bbox",
    "boxes": [{"label": "circle", "x": 0.25, "y": 0.25, "w": 0.5, "h": 0.4}],
}

# The workflow's targets, printed beside the results (never asserted).
NEXT_P50_TARGET_MS = 30.0
SUBMITS_PER_S_TARGET = 100.0
SUBMIT_P99_TARGET_MS = 250.0
EXPORT_50K_TARGET_S = 15.0
LIFETIME_TARGET_X = 1.5

# The floor of AWS requests per task over its life (derivation: docs/benchmarks.md).
FLOOR: tuple[tuple[str, float], ...] = (
    ("ingest: BatchWriteItem (25 tasks each)", 1 / 25),
    ("events: PutEvents for its 5 events (10 per call)", 5 / 10),
    ("starter: window slot update + StartExecution", 2),
    ("Label step: queue update", 1),
    ("lease: candidates Query + conditional update", 2),
    ("submit: transaction + SendTaskSuccess", 2),
    ("Review step: review-queue update", 1),
    ("review lease: candidates Query + conditional update", 2),
    ("decide: transaction + SendTaskSuccess", 2),
    ("ExportRecord step: status update", 1),
    ("EmitCompleted step: window slot release", 1),
    ("export: 2 Queries per 500 tasks", 2 / 500),
)


@dataclass(frozen=True)
class Person:
    user_id: str
    token: str


# ---- setup ------------------------------------------------------------------------------------


def _bench_user(i: int) -> DemoUser:
    return DemoUser(f"bench-annotator-{i}@serval.local", "annotator", "annotator", f"Serval-Bench{i}-2026!")


def _annotators(stack: LocalStack, admin: str, n: int) -> list[Person]:
    """``n`` annotators (Cognito users in the annotator group), adopted into the directory."""
    assert stack.resources is not None
    cognito = boto3.client("cognito-idp")
    pool = stack.resources.user_pool_id
    people = []
    for i in range(n):
        user = _bench_user(i)
        user_id = create_cognito_user(cognito, pool, user)
        call_api(stack.api_url, admin, "GET", f"/users/{user_id}")
        people.append(Person(user_id, id_token(stack.resources, user)))
    return people


def _demo(stack: LocalStack, role: str) -> Person:
    assert stack.resources is not None
    user = next(u for u in DEMO_USERS if u.role == role)
    return Person(user_id_of(stack.resources, user), id_token(stack.resources, user))


def _project(
    stack: LocalStack, admin: str, media: str, labels: dict[str, Any], members: list[tuple[Person, str]]
) -> str:
    body = {"name": f"bench {media}", "media_types": [media], "label_config": labels}
    project_id = str(call_api(stack.api_url, admin, "POST", "/projects", body)["project_id"])
    for person, role in members:
        call_api(
            stack.api_url,
            admin,
            "POST",
            f"/projects/{project_id}/members",
            {"user_id": person.user_id, "role": role},
        )
    return project_id


@contextmanager
def _as_function(stack: LocalStack, key: str) -> Iterator[None]:
    """Run logic in this thread with the environment the local runtime gives function ``key``."""
    from moto.awslambda.models import lambda_backends

    from infra.local.lambda_runtime import function_environment
    from serval.settings import invocation_environment

    fn = lambda_backends[ACCOUNT_ID][REGION].get_function(stack.spec.functions[key].name)
    with invocation_environment(function_environment(fn, "bench")):
        yield


def _queue_text_tasks(stack: LocalStack, project_id: str, n: int) -> float:
    """Write ``n`` text tasks and let the Label step's logic queue them; returns seconds taken."""
    from serval.adapters import tasks as task_store
    from serval.domain.media import MediaType
    from serval.domain.models import Task, TextRef, utcnow
    from serval.logic import queue

    start = time.perf_counter()
    at = utcnow()
    with _as_function(stack, "workflow"):
        for base in range(0, n, 1_000):
            task_store.batch_put(
                [
                    Task(
                        task_id=f"t-{i:06d}",
                        project_id=project_id,
                        data={"text": TextRef(text=f"review number {i}: the product was fine")},
                        media_type=MediaType.TEXT,
                        created_at=at,
                        updated_at=at,
                    )
                    for i in range(base, min(n, base + 1_000))
                ]
            )
        for i in range(n):
            queue.enter_label(project_id, f"t-{i:06d}", token=f"bench-token-{i}", rework=0)
    return time.perf_counter() - start


def _annotated_image_tasks(stack: LocalStack, project_id: str, n: int) -> None:
    """``n`` image tasks (size in their metadata) with one box annotation each, BatchWriteItem only."""
    from serval.adapters import dynamo, mapping
    from serval.adapters import tasks as task_store
    from serval.domain.media import MediaType
    from serval.domain.models import Annotation, S3Ref, Task, utcnow
    from serval.domain.results import Result

    bucket = stack.spec.buckets["data"].name
    at = utcnow()
    results: list[Result] = [
        *_results([{"control": "shape", "type": "classification", "labels": ["circle"]}, BOX])
    ]
    with _as_function(stack, "jobs"):
        m = dynamo.tasks()
        for base in range(0, n, 1_000):
            chunk = range(base, min(n, base + 1_000))
            task_store.batch_put(
                [
                    Task(
                        task_id=f"t-{i:06d}",
                        project_id=project_id,
                        data={"image": S3Ref(bucket=bucket, key=f"projects/{project_id}/img_{i:06d}.png")},
                        media_type=MediaType.IMAGE,
                        metadata={"width": 640, "height": 480},
                        created_at=at,
                        updated_at=at,
                    )
                    for i in chunk
                ]
            )
            annotations = [
                Annotation(
                    annotation_id=f"a-{i:06d}",
                    task_id=f"t-{i:06d}",
                    project_id=project_id,
                    author="bench",
                    results=results,
                    lead_time_s=3.0,
                    label_config_version=1,
                    created_at=at,
                )
                for i in chunk
            ]
            dynamo.batch_write(
                [
                    {"PutRequest": {"Item": m.AnnotationItem(**mapping.annotation_to_attrs(a)).serialize()}}
                    for a in annotations
                ]
            )


def _results(raw: list[dict[str, Any]]) -> list[Any]:
    from pydantic import TypeAdapter

    from serval.domain.results import Result

    return TypeAdapter(list[Result]).validate_python(raw)


@contextmanager
def _no_send_task_success() -> Iterator[list[str]]:
    """Synthetic tokens wait on no execution: the submit's SendTaskSuccess becomes a no-op."""
    from serval.adapters import workflow

    sent: list[str] = []
    original = workflow.send_success

    def record(token: str, output: dict[str, Any]) -> None:
        sent.append(token)

    workflow.send_success = record
    try:
        yield sent
    finally:
        workflow.send_success = original


# ---- queue: next-task latency and submit throughput -------------------------------------------


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return (time.perf_counter() - start) * 1000, value


@dataclass(frozen=True)
class Path_:
    """How an annotator reaches the queue: the local gateway (HTTP, real ID token) or the logic layer."""

    name: str
    lease: Callable[[str], Any]  # task id leased, or None
    submit: Callable[[str], Any]


def _gateway(stack: LocalStack, project_id: str, who: Person) -> Path_:
    def lease(_: str) -> str | None:
        task = call_api(stack.api_url, who.token, "POST", f"/projects/{project_id}/next")["task"]
        return None if task is None else str(task["task_id"])

    def submit(task_id: str) -> Any:
        path = f"/projects/{project_id}/tasks/{task_id}/submit"
        return call_api(stack.api_url, who.token, "POST", path, POSITIVE)

    return Path_("gateway", lease, submit)


def _logic(stack: LocalStack, project_id: str, who: Person) -> Path_:
    """The API function's logic, called in this thread with the API function's environment bound."""
    from serval.domain.actor import Actor
    from serval.domain.models import AnnotationCreate
    from serval.logic import queue

    actor = Actor(user_id=who.user_id, username=who.user_id, groups=("annotator",), request_id="bench")
    body = AnnotationCreate.model_validate(POSITIVE)

    def lease(_: str) -> str | None:
        with _as_function(stack, "api"):
            task = queue.next_task(project_id, actor).task
        return None if task is None else str(task.task_id)

    def submit(task_id: str) -> Any:
        with _as_function(stack, "api"):
            return queue.submit(project_id, task_id, body, actor)

    return Path_("logic", lease, submit)


def _lease_many(path: Path_, n: int) -> tuple[list[float], list[str], int]:
    """``n`` leases: latencies (ms), the task ids leased, and empty answers."""
    latencies: list[float] = []
    leased: list[str] = []
    empty = 0
    for _ in range(n):
        ms, task_id = _timed(partial(path.lease, ""))
        latencies.append(ms)
        if task_id is None:
            empty += 1
        else:
            leased.append(task_id)
    return latencies, leased, empty


def _submit_all(path: Path_, task_ids: list[str]) -> list[float]:
    return [_timed(partial(path.submit, task_id))[0] for task_id in task_ids]


def _in_threads(work: Sequence[Callable[[], Any]]) -> tuple[list[Any], float]:
    """Run each callable in its own thread, started together; results and wall seconds."""
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(work) + 1)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results, time.perf_counter() - start


def _queue_scenarios(
    stack: LocalStack, admin: Person, people: list[Person], next_table: Table, submit_table: Table
) -> None:
    for size in SIZES:
        project_id = _project(stack, admin.token, "text", TEXT_LABELS, [(p, "annotator") for p in people])
        _queue_at_size(stack, project_id, size, people, next_table, submit_table)


def _queue_at_size(
    stack: LocalStack,
    project_id: str,
    size: int,
    people: list[Person],
    next_table: Table,
    submit_table: Table,
) -> None:
    load_s = _queue_text_tasks(stack, project_id, size)
    single = min(SINGLE_SAMPLES, size // 8)
    per_thread = min(PER_THREAD_SAMPLES, size // 20)
    gateway = _gateway(stack, project_id, people[0])
    logic = [_logic(stack, project_id, who) for who in people]
    runs = {
        ("gateway", 1): _in_threads([partial(_lease_many, gateway, single)]),
        ("logic", 1): _in_threads([partial(_lease_many, logic[0], single)]),
        ("logic", ANNOTATORS): _in_threads([partial(_lease_many, path, per_thread) for path in logic]),
    }
    for (path_name, annotators), (leased, seconds) in runs.items():
        latencies = [ms for one, _, _ in leased for ms in one]
        ids = [tid for _, some, _ in leased for tid in some]
        next_table.add(
            f"{size:,}",
            path_name,
            annotators,
            len(latencies),
            f"{len(latencies) / seconds:.0f}",
            f"{percentile(latencies, 50):.1f}",
            f"{percentile(latencies, 99):.1f}",
            sum(empty for _, _, empty in leased),
            len(ids) - len(set(ids)),
            f"{load_s:.0f}",
        )
    # every task leased above is submitted by its holder: 1 annotator via each path, then 8 at once
    submits = {
        ("gateway", 1): _in_threads([partial(_submit_all, gateway, runs["gateway", 1][0][0][1])]),
        ("logic", 1): _in_threads([partial(_submit_all, logic[0], runs["logic", 1][0][0][1])]),
        ("logic", ANNOTATORS): _in_threads(
            [
                partial(_submit_all, path, ids)
                for path, (_, ids, _) in zip(logic, runs["logic", ANNOTATORS][0], strict=True)
            ]
        ),
    }
    for (path_name, annotators), (timings, seconds) in submits.items():
        done = [ms for one in timings for ms in one]
        submit_table.add(
            f"{size:,}",
            path_name,
            annotators,
            len(done),
            f"{seconds:.2f}",
            f"{len(done) / seconds:.0f}",
            f"{percentile(done, 50):.1f}",
            f"{percentile(done, 99):.1f}",
        )


# ---- export time and peak RSS -----------------------------------------------------------------


class RssSampler:
    """Peak RSS of this process, sampled by a thread."""

    def __init__(self, process: psutil.Process, every_s: float = RSS_EVERY_S) -> None:
        self.process = process
        self.every_s = every_s
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _jobs_poller(stack: LocalStack) -> SqsPoller:
    assert stack.resources is not None
    name = stack.spec.functions["jobs"].name
    (poller,) = [
        p
        for p in pollers_for(stack.spec, stack.resources)
        if isinstance(p, SqsPoller) and p.source.function_name == name
    ]
    return poller


class Polls:
    """Reads the bench makes only to wait (status polls through the API): left out of the counts."""

    def __init__(self, calls: CallLog | None = None) -> None:
        self.calls = calls
        self.excluded: Counter[str] = Counter()  # operation -> calls, all made by the API function

    def get(self, stack: LocalStack, token: str, path: str) -> Any:
        if self.calls is None:
            return call_api(stack.api_url, token, "GET", path)
        before = self.calls.of_function("api")
        value = call_api(stack.api_url, token, "GET", path)
        self.excluded.update(self.calls.of_function("api") - before)
        return value


def _wait_job(
    stack: LocalStack,
    token: str,
    project_id: str,
    job_id: str,
    polls: Polls | None = None,
    timeout_s: float = 1800,
) -> dict[str, Any]:
    polls = polls or Polls()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = polls.get(stack, token, f"/projects/{project_id}/exports/{job_id}")
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(0.05)
    raise TimeoutError(f"export {job_id} did not finish")


def _export_scenario(stack: LocalStack, admin: Person, table: Table) -> None:
    process = psutil.Process()
    poller = _jobs_poller(stack)
    poller.start()
    try:
        for size in SIZES:
            project_id = _project(stack, admin.token, "image", LABELS, [])
            _annotated_image_tasks(stack, project_id, size)
            for fmt in ("jsonl", "coco"):
                before = process.memory_info().rss
                with RssSampler(process) as rss:
                    start = time.perf_counter()
                    created = call_api(
                        stack.api_url, admin.token, "POST", f"/projects/{project_id}/exports", {"format": fmt}
                    )
                    job = _wait_job(stack, admin.token, project_id, str(created["job_id"]))
                    seconds = time.perf_counter() - start
                head = boto3.client("s3").head_object(
                    Bucket=stack.spec.buckets["exports"].name, Key=job["result_key"]
                )
                table.add(
                    f"{size:,}",
                    fmt,
                    job["status"],
                    f"{job['counts']['done']:,}",
                    f"{seconds:.1f}",
                    f"{size / seconds:,.0f}",
                    f"{head['ContentLength'] / 2**20:.1f}",
                    f"{before / 2**20:.0f}",
                    f"{rss.peak / 2**20:.0f}",
                    f"{(rss.peak - before) / 2**20:+.0f}",
                )
    finally:
        poller.stop()


# ---- requests per task over its whole life ----------------------------------------------------


def _wait_status(
    stack: LocalStack, token: str, project_id: str, status: str, n: int, polls: Polls, timeout_s: float = 1800
) -> None:
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = polls.get(stack, token, f"/projects/{project_id}/stats")["by_status"]
        if counts.get(status, 0) >= n:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{n} tasks did not reach {status}: {counts}")


def _settled(calls: CallLog, quiet_s: float = 3.0, timeout_s: float = 600) -> None:
    """Wait until the functions stop calling AWS (the stream consumers have caught up)."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = calls.by_functions_total()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.2)


@dataclass
class LifecycleRun:
    """What one lifecycle run measured: every call (the bench's status polls noted apart)."""

    calls: CallLog
    polls: Polls
    tasks: int
    seconds: float
    project_id: str


def lifecycle_run(
    stack: LocalStack,
    admin: Person,
    annotator: Person,
    reviewer: Person,
    n: int,
    observer: Observer | None = None,
) -> LifecycleRun:
    """``n`` text tasks through their whole life: a manifest upload (ingest), the real state
    machine, lease and submit, review lease and approve, export and a JSONL export job."""
    project_id = _project(
        stack, admin.token, "text", TEXT_LABELS, [(annotator, "annotator"), (reviewer, "reviewer")]
    )
    manifest = "\n".join(
        json.dumps({"data": {"text": f"review number {i}: fine"}}) for i in range(n)
    ).encode()
    s3 = boto3.client("s3")
    with metered(observer) as calls:
        polls = Polls(calls)
        start = time.perf_counter()
        s3.put_object(
            Bucket=stack.spec.buckets["data"].name, Key=f"projects/{project_id}/life.jsonl", Body=manifest
        )
        _wait_status(stack, admin.token, project_id, "queued", n, polls)
        for _ in range(n):
            lease = call_api(stack.api_url, annotator.token, "POST", f"/projects/{project_id}/next")
            task_id = lease["task"]["task_id"]
            call_api(
                stack.api_url,
                annotator.token,
                "POST",
                f"/projects/{project_id}/tasks/{task_id}/submit",
                POSITIVE,
            )
        _wait_status(stack, admin.token, project_id, "in_review", n, polls)
        for _ in range(n):
            lease = call_api(stack.api_url, reviewer.token, "POST", f"/projects/{project_id}/review/next")
            task_id = lease["task"]["task_id"]
            call_api(
                stack.api_url,
                reviewer.token,
                "POST",
                f"/projects/{project_id}/tasks/{task_id}/review",
                {"decision": "approve"},
            )
        _wait_status(stack, admin.token, project_id, "exported", n, polls)
        created = call_api(
            stack.api_url, admin.token, "POST", f"/projects/{project_id}/exports", {"format": "jsonl"}
        )
        job = _wait_job(stack, admin.token, project_id, str(created["job_id"]), polls)
        assert job["counts"]["done"] == n, job
        _settled(calls)
        seconds = time.perf_counter() - start
    return LifecycleRun(calls, polls, n, seconds, project_id)


def _lifecycle(stack: LocalStack, admin: Person, annotator: Person, reviewer: Person) -> tuple[Table, Table]:
    run = lifecycle_run(stack, admin, annotator, reviewer, LIFECYCLE_TASKS)
    return _lifetime_tables(run.calls, run.polls, run.tasks, run.seconds)


def _lifetime_tables(calls: CallLog, polls: Polls, n: int, seconds: float) -> tuple[Table, Table]:
    floor = sum(per_task for _, per_task in FLOOR)
    by_function: Counter[str] = Counter()
    by_operation: Counter[str] = Counter()
    for (caller, name), made in calls.by_function.items():
        if caller == "-":
            continue  # the bench driver and the pollers (Lambda's event-source mappings on AWS)
        count = made - polls.excluded[name] if caller == "api" else made  # not the bench's status polls
        by_function[caller] += count
        by_operation[f"{caller} {name}"] += count
    workflow_path = sum(c for f, c in by_function.items() if f not in ("events", "chainer"))
    consumers = by_function["events"] + by_function["chainer"]
    floor_path = floor - 5 / 10  # the floor's PutEvents belong to the events function
    summary = Table(
        f"AWS requests per task over its whole life ({n} tasks, ingest → label → review → export, real state machine, {seconds:.0f} s)",
        ["what", "requests/task", "floor/task", "x floor", "target"],
    )
    summary.add(
        "workflow path (api, ingest, starter, workflow, jobs)",
        f"{workflow_path / n:.2f}",
        f"{floor_path:.2f}",
        f"{workflow_path / n / floor_path:.2f}",
        "",
    )
    summary.add(
        "stream consumers (events, chainer)", f"{consumers / n:.2f}", "0.50", f"{consumers / n / 0.5:.2f}", ""
    )
    total = workflow_path + consumers
    summary.add(
        "all functions",
        f"{total / n:.2f}",
        f"{floor:.2f}",
        f"{total / n / floor:.2f}",
        f"≤ {LIFETIME_TARGET_X}x",
    )
    detail = Table(
        "Requests per task by function and operation (≥ 0.01 per task)",
        ["function operation", "requests/task"],
    )
    for name, count in sorted(by_operation.items(), key=lambda kv: -kv[1]):
        if count / n >= 0.01:
            detail.add(name, f"{count / n:.2f}")
    return summary, detail


# ---- run ---------------------------------------------------------------------------------------


def _forget_clients() -> None:
    """Drop SDK clients and pynamodb connections cached by an earlier stack of this process.

    `make bench` starts the ingest benchmark's stack first; its moto server (another port) is
    gone, and clients still pointing at it make every request time out.
    """
    from serval.adapters import clients, dynamo_models

    clients.reset()
    dynamo_models.tasks_models.cache_clear()
    dynamo_models.audit_models.cache_clear()


def run() -> Iterator[Table]:
    """The tables, each as soon as it is measured (one local stack for all of them)."""
    _forget_clients()
    with tempfile.TemporaryDirectory() as data_dir:
        stack = LocalStack(save_state=False, say=lambda _: None)
        stack.start(
            port_moto=free_port(), port_api=free_port(), data_dir=Path(data_dir), seed=True, restore=False
        )
        try:
            yield from _measure(stack)
        finally:
            stack.stop()


def _measure(stack: LocalStack) -> Iterator[Table]:
    admin, annotator, reviewer = (_demo(stack, role) for role in ("admin", "annotator", "reviewer"))
    people = _annotators(stack, admin.token, ANNOTATORS)
    yield from _lifecycle(stack, admin, annotator, reviewer)
    stack.stop_pollers()  # the queue and export paths alone, as on AWS (see the module docstring)
    next_table = Table(
        "Next-task latency in ms, pollers stopped. gateway: POST /projects/{id}/next via the local gateway"
        " with a real ID token; logic: serval.logic.queue.next_task in threads, the API function's"
        " environment bound (the local runtime cannot run one function concurrently, see docs/benchmarks.md)."
        f" Target p50 ≤ {NEXT_P50_TARGET_MS:.0f} ms at 50k and no slower than at 1k",
        [
            "tasks queued",
            "path",
            "annotators",
            "calls",
            "calls/s",
            "p50",
            "p99",
            "empty answers",
            "leased twice",
            "queue fill s",
        ],
    )
    submit_table = Table(
        "Submit throughput: each annotator submits the tasks it leased (gateway: POST .../submit;"
        " logic: serval.logic.queue.submit in threads). SendTaskSuccess is a no-op here."
        f" Target ≥ {SUBMITS_PER_S_TARGET:.0f}/s with 8 annotators, p99 ≤ {SUBMIT_P99_TARGET_MS:.0f} ms",
        ["tasks queued", "path", "annotators", "submits", "seconds", "submits/s", "p50 ms", "p99 ms"],
    )
    with _no_send_task_success():
        _queue_scenarios(stack, admin, people, next_table, submit_table)
    yield next_table
    yield submit_table
    export = Table(
        f"Dataset export job, image tasks with one box each, POST /exports → succeeded (target 50k ≤ {EXPORT_50K_TARGET_S:.0f} s, peak memory no higher than at 10k)",
        [
            "tasks",
            "format",
            "status",
            "written",
            "seconds",
            "tasks/s",
            "object MiB",
            "RSS before MiB",
            "peak RSS MiB",
            "peak - before MiB",
        ],
    )
    _export_scenario(stack, admin, export)
    yield export


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    for table in run():
        print(table.render(), flush=True)
