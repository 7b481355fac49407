"""The local stack as `make dev` runs it, measured from outside: the headline figures.

The stack runs in a process of its own (``python -m infra.local``, every poller, the state
machine and the real ``SendTaskSuccess`` live, functions in their worker processes), and this
process drives it as clients would: S3 uploads and HTTP requests with real Cognito ID tokens.

- upload to leasable: a manifest is uploaded; the time until every task is leasable (queued
  behind a waiting Label step), or, past the project's active window, until the window is full;
- lease + submit through the gateway with 1 and 8 annotators at once, on a project whose
  queue is still filling: latency p50/p99 of the pair, submits per second, double leases;
- ingest: manifests of 1k, 10k and 50k lines imported with the event pipeline running, beside
  the raw ``BatchWriteItem`` rate of the same moto server as the tables grow; RSS after each;
- starvation: while the largest import runs, a 10-line manifest of another project is timed
  from upload to imported, and ``GET /health`` is sampled;
- CPU seconds and memory (RSS and USS, summed over the stack's processes).

Sizes come from ``BENCH_LIVE_SIZES`` (default ``1000,10000``) and ``BENCH_LIVE_INGEST``
(default ``1000,10000,50000``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
import psutil

from bench.flow import _in_threads
from bench.ingest import raw_batch_write_rate, wait_for_import
from bench.report import Table, percentile
from infra.local.moto_server import free_port, process_environment
from infra.local.seed import DEMO_USERS, ApiError, DemoUser, call_api, create_cognito_user
from infra.local.stack import local_spec
from infra.spec import ROOT

SIZES = tuple(int(n) for n in os.environ.get("BENCH_LIVE_SIZES", "1000,10000").split(","))
ANNOTATORS = 8
INGEST_SIZES = tuple(int(n) for n in os.environ.get("BENCH_LIVE_INGEST", "1000,10000,50000").split(","))
LEASES_EACH = int(os.environ.get("BENCH_LIVE_LEASES", "40"))
LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]}
    ]
}
ANSWER = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}


@dataclass
class LiveStack:
    """A `python -m infra.local` process and what a client needs to reach it."""

    process: subprocess.Popen[bytes]
    api_url: str
    environment: dict[str, str]
    user_pool_id: str
    client_id: str

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cpu_s(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total

    def memory_mib(self) -> tuple[float, float]:
        """RSS and USS (memory no other process shares) summed over the stack's processes."""
        rss = uss = 0
        for p in self.tree():
            try:
                info = p.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss, uss = rss + info.rss, uss + info.uss
        return rss / 2**20, uss / 2**20

    def token(self, email: str, password: str) -> str:
        cognito = _client("cognito-idp", self.environment)
        answer = cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
        return str(answer["AuthenticationResult"]["IdToken"])


def _client(service: str, environment: dict[str, str]) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment["AWS_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )


@contextmanager
def live_stack() -> Iterator[LiveStack]:
    moto_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, "-m", "infra.local", "--moto-port", str(moto_port)]
        command += ["--api-port", str(api_port), "--data-dir", data_dir, "--fresh"]
        env = os.environ | {"PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("", "layers", "functions"))}
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            api_url = f"http://127.0.0.1:{api_port}"
            _wait_healthy(api_url, process)
            environment = process_environment(moto_port)
            spec = local_spec()
            cognito = _client("cognito-idp", environment)
            pools = cognito.list_user_pools(MaxResults=10)["UserPools"]
            pool = next(p["Id"] for p in pools if p["Name"] == spec.auth.user_pool_name)
            clients = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"]
            yield LiveStack(process, api_url, environment, pool, clients[0]["ClientId"])
        finally:
            process.send_signal(2)  # Ctrl-C, as a user stops it
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(api_url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}")
        try:
            with urllib.request.urlopen(api_url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the local stack did not become healthy")


def _wait_seeded(stack: LiveStack, timeout_s: float = 300) -> str:
    """The admin's token, once the seed has created the demo project (its last step)."""
    deadline = time.monotonic() + timeout_s
    admin = next(u for u in DEMO_USERS if u.role == "admin")
    while time.monotonic() < deadline:
        try:
            token = stack.token(admin.email, admin.password)
            if call_api(stack.api_url, token, "GET", "/projects")["items"]:
                return token
        except (ApiError, boto3.exceptions.Boto3Error, Exception):  # not seeded yet
            pass
        time.sleep(1)
    raise TimeoutError("the local stack did not finish seeding")


def _manifest(lines: int, tag: str) -> bytes:
    return "\n".join(
        json.dumps({"data": {"text": f"{tag} review {i}: the product was fine"}}) for i in range(lines)
    ).encode()


def _annotators(stack: LiveStack, admin: str, n: int) -> list[tuple[str, str]]:
    """``n`` annotators (user id, ID token), adopted into the directory."""
    cognito = _client("cognito-idp", stack.environment)
    people = []
    for i in range(n):
        user = DemoUser(f"live-annotator-{i}@serval.local", "annotator", "annotator", f"Serval-Live{i}-2026!")
        user_id = create_cognito_user(cognito, stack.user_pool_id, user)
        call_api(stack.api_url, admin, "GET", f"/users/{user_id}")
        people.append((user_id, stack.token(user.email, user.password)))
    return people


def _project(stack: LiveStack, admin: str, name: str, members: list[tuple[str, str]]) -> str:
    body = {"name": name, "media_types": ["text"], "label_config": LABELS}
    project_id = str(call_api(stack.api_url, admin, "POST", "/projects", body)["project_id"])
    for user_id, _ in members:
        member = {"user_id": user_id, "role": "annotator"}
        call_api(stack.api_url, admin, "POST", f"/projects/{project_id}/members", member)
    return project_id


def _upload(stack: LiveStack, project_id: str, lines: int) -> None:
    s3 = _client("s3", stack.environment)
    bucket = local_spec().buckets["data"].name
    s3.put_object(
        Bucket=bucket, Key=f"projects/{project_id}/live-{lines}.jsonl", Body=_manifest(lines, project_id)
    )


def _queued(stack: LiveStack, admin: str, project_id: str) -> int:
    return int(call_api(stack.api_url, admin, "GET", f"/projects/{project_id}/stats")["by_status"]["queued"])


def _until_leasable(
    stack: LiveStack, admin: str, project_id: str, want: int, timeout_s: float
) -> float | None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if _queued(stack, admin, project_id) >= want:
            return time.perf_counter() - start
        time.sleep(0.25)
    return None


def _upload_to_leasable(stack: LiveStack, admin: str, table: Table, sizes: tuple[int, ...]) -> None:
    window = local_spec().config.active_window
    for size in sizes:
        project_id = _project(stack, admin, f"live {size}", [])
        want = min(size, window)
        cpu = stack.cpu_s()
        _upload(stack, project_id, size)
        seconds = _until_leasable(stack, admin, project_id, want, timeout_s=max(120.0, size / 2))
        cpu_used = stack.cpu_s() - cpu
        rss, uss = stack.memory_mib()
        what = f"{size:,}" if size <= window else f"{size:,} (window {window:,}: until it is full)"
        table.add(
            what,
            "timed out" if seconds is None else f"{seconds:.1f}",
            "-" if seconds is None else f"{want / seconds:,.0f}",
            f"{cpu_used / want * 1000:.0f}",
            f"{rss:,.0f} / {uss:,.0f}",
            "<= 20 s for 1,000 (>= 50 tasks/s)",
        )


def _work(
    stack: LiveStack, project_id: str, token: str, leases: int
) -> tuple[list[float], list[str], int, list[str]]:
    """Lease then submit, ``leases`` times: pair latencies (ms), tasks submitted, empty answers,
    and every task leased (a task leased twice is a double lease: each task needs one answer)."""
    latencies: list[float] = []
    submitted: list[str] = []
    leased: list[str] = []
    empty = 0
    for _ in range(leases):
        start = time.perf_counter()
        task = call_api(stack.api_url, token, "POST", f"/projects/{project_id}/next")["task"]
        if task is None:
            empty += 1
            time.sleep(0.05)
            continue
        leased.append(str(task["task_id"]))
        path = f"/projects/{project_id}/tasks/{task['task_id']}/submit"
        try:
            call_api(stack.api_url, token, "POST", path, ANSWER)
        except ApiError as error:
            if error.status != 409:
                raise
            continue  # the lease was lost meanwhile: counted as neither submitted nor empty
        latencies.append((time.perf_counter() - start) * 1000)
        submitted.append(str(task["task_id"]))
    return latencies, submitted, empty, leased


def _annotating(stack: LiveStack, admin: str, table: Table) -> None:
    people = _annotators(stack, admin, ANNOTATORS)
    for clients in (1, ANNOTATORS):
        project_id = _project(stack, admin, f"live annotators {clients}", people)
        _upload(stack, project_id, 1000)  # the queue fills while they work
        if _until_leasable(stack, admin, project_id, clients, timeout_s=300) is None:
            table.add(str(clients), "no task became leasable within 300 s", *[""] * 7)
            continue
        cpu = stack.cpu_s()
        work = [partial(_work, stack, project_id, people[i][1], LEASES_EACH) for i in range(clients)]
        results, seconds = _in_threads(work)
        latencies = [ms for r in results for ms in r[0]]
        submitted = [t for r in results for t in r[1]]
        doubles = sum(n - 1 for n in Counter(t for r in results for t in r[3]).values() if n > 1)
        table.add(
            str(clients),
            str(len(submitted)),
            f"{len(submitted) / seconds:.1f}",
            f"{percentile(latencies, 50):.0f}",
            f"{percentile(latencies, 99):.0f}",
            str(sum(r[2] for r in results)),
            str(doubles),
            f"{(stack.cpu_s() - cpu) / max(1, len(submitted)) * 1000:.0f}",
            "p50 <= 50 ms (1); 8 >= 2x the submits/s of 1; 0 double",
        )


def _health_ms(stack: LiveStack) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"{stack.api_url}/health", timeout=60) as answer:
        answer.read()
    return (time.perf_counter() - start) * 1000


def _import_time(stack: LiveStack, admin: str, project_id: str, lines: int) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    _upload(stack, project_id, lines)
    record = wait_for_import(stack.api_url, admin, project_id, timeout_s=max(300.0, lines / 10))
    return time.perf_counter() - start, record


def _starvation(
    stack: LiveStack, admin: str, running: threading.Event, into: list[tuple[float, list[float]]]
) -> None:
    """While a large import runs: a small manifest's upload-to-imported time, and /health samples."""
    small = _project(stack, admin, "live small beside a large import", [])
    time.sleep(5)  # let the large import get going
    seconds, _ = _import_time(stack, admin, small, 10)
    health: list[float] = []
    while running.is_set():
        health.append(_health_ms(stack))
        time.sleep(0.5)
    into.append((seconds, health))


def _ingest(stack: LiveStack, admin: str, table: Table, starving: Table) -> None:
    dynamodb = _client("dynamodb", stack.environment)
    tasks_table = local_spec().tables["tasks"].name
    for size in INGEST_SIZES:
        in_table = sum(
            int(page["Count"])
            for page in dynamodb.get_paginator("scan").paginate(TableName=tasks_table, Select="COUNT")
        )
        raw = raw_batch_write_rate(tasks_table, size, dynamodb, partition=f"BENCH#raw{size}")
        project_id = _project(stack, admin, f"live ingest {size}", [])
        cpu = stack.cpu_s()
        running = threading.Event()
        running.set()
        beside: list[tuple[float, list[float]]] = []
        watcher = None
        if size == max(INGEST_SIZES):
            watcher = threading.Thread(target=_starvation, args=(stack, admin, running, beside))
            watcher.start()
        seconds, record = _import_time(stack, admin, project_id, size)
        running.clear()
        if watcher is not None:
            watcher.join()
        rss, uss = stack.memory_mib()
        rate = size / seconds
        table.add(
            f"{size:,}",
            f"{in_table:,}",
            f"{raw:,.0f}",
            f"{seconds:.1f}",
            f"{rate:,.0f}",
            f"{100 * rate / raw:.0f}%",
            str(record.get("tasks_created")),
            f"{(stack.cpu_s() - cpu) / size * 1000:.1f}",
            f"{rss:,.0f} / {uss:,.0f}",
        )
        for small_s, health in beside:
            starving.add(
                f"{size:,}",
                f"{small_s:.1f}",
                str(len(health)),
                f"{percentile(health, 50):.0f}" if health else "-",
                f"{max(health):.0f}" if health else "-",
                "small import within seconds; API responsive",
            )


def run() -> Iterator[Table]:
    with live_stack() as stack:
        admin = _wait_seeded(stack)
        leasable = Table(
            "Upload to leasable on the live stack (python -m infra.local in its own process)",
            ["tasks", "seconds", "tasks/s", "stack CPU ms/task", "RSS / USS MiB (all processes)", "target"],
        )
        # the smallest size first, then the annotators (a larger import's backlog would be
        # ahead of their project's messages in the executions queue), then the larger sizes
        _upload_to_leasable(stack, admin, leasable, SIZES[:1])
        annotating = Table(
            "Lease + submit through the gateway on the live stack, queue filling (ms per pair)",
            [
                "annotators",
                "submits",
                "submits/s",
                "p50",
                "p99",
                "empty answers",
                "double leases",
                "stack CPU ms/submit",
                "target",
            ],
        )
        _annotating(stack, admin, annotating)
        _upload_to_leasable(stack, admin, leasable, SIZES[1:])
        yield leasable
        yield annotating
        ingest = Table(
            "Ingest on the live stack (upload to import complete; event pipeline running)",
            [
                "lines",
                "items in table before",
                "raw BatchWriteItem items/s",
                "seconds",
                "tasks/s",
                "% of raw (target >= 80%)",
                "tasks created",
                "stack CPU ms/task",
                "RSS / USS MiB after",
            ],
        )
        starving = Table(
            "Another project's 10-line manifest during the largest import",
            [
                "import running",
                "small manifest seconds",
                "/health samples",
                "/health p50 ms",
                "/health max ms",
                "target",
            ],
        )
        _ingest(stack, admin, ingest, starving)
        yield ingest
        yield starving


if __name__ == "__main__":
    for result in run():
        print(result.render(), flush=True)
