"""Lambda's process model for the local stack: a pool of warm worker processes per function.

moto stays one server in the launcher; :func:`infra.local.patches` hands every invocation
(``_invoke_lambda``) to :meth:`ProcessRuntime.invoke`, which runs it in a worker process of
that function (:mod:`infra.local.worker`). As on Lambda:

- each worker is one execution environment: it has the function's own environment as its
  ``os.environ``, imports the handler once and stays warm, and serves one invocation at a time;
- a function serves concurrent invocations with up to its concurrency's workers (from
  ``infra/spec.py``); a further invocation waits for a free worker;
- workers talk to moto over HTTP, so handlers and moto use different cores;
- a worker that crashes fails only its invocation (``Runtime.ExitError``), and one that runs
  past the function's timeout is killed (``Sandbox.Timedout``); the next invocation starts a
  fresh worker. SQS and stream pollers then retry the batch as AWS's would;
- a changed function configuration (handler, environment, timeout, memory) gets new workers.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from infra.local.console import FunctionLogs
from infra.local.lambda_runtime import (
    InvokeResult,
    MotoFunction,
    context_for,
    finish,
    function_environment,
    timed_out,
    unsupported_runtime,
)
from infra.local.worker import READY
from infra.spec import FUNCTIONS_SRC, ROOT

log = logging.getLogger("serval.local.workers")

# Lambda gives the init phase 10 s of its own; a loaded developer machine gets more.
INIT_TIMEOUT_S = 60.0
CLOSE_WAIT_S = 10.0  # how long stopping waits for killed invocations to answer
# An environment idle this long is stopped (Lambda reclaims idle ones after minutes; here
# sooner, so that an idle local stack holds no more memory than its busy functions need).
IDLE_TTL_S = 60.0
REAP_EVERY_S = 5.0
DEFAULT_CONCURRENCY = 2  # functions the spec gives no concurrency (tests' ad-hoc functions)
# What a worker inherits from the launcher besides the function's own environment.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SSL_CERT_FILE", "TZ")


def _fingerprint(fn: MotoFunction) -> tuple[Any, ...]:
    return (
        fn.handler,
        fn.run_time,
        int(fn.timeout),
        int(fn.memory_size),
        tuple(sorted((k, str(v)) for k, v in fn.environment_vars.items())),
    )


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    requests: Connection
    answers: Connection
    fingerprint: tuple[Any, ...]
    invocations: int = 0
    initialized: bool = False
    idle_since: float = 0.0  # time.monotonic() of its last release

    def wait_ready(self) -> bool:
        """Wait for the init phase (the handler's import); False if the worker died or took too long."""
        if self.initialized:
            return True
        try:
            self.initialized = self.answers.poll(INIT_TIMEOUT_S) and self.answers.recv_bytes() == READY
        except (EOFError, OSError):
            self.initialized = False
        return self.initialized

    def kill(self) -> None:
        for end in (self.requests, self.answers):
            end.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def start_worker(
    fn: MotoFunction, base_env: Mapping[str, str], functions_dir: str, logs: FunctionLogs | None = None
) -> Worker:
    """A new execution environment of ``fn``: a process with the function's environment.

    With ``logs`` its output goes to the function's log file (and warnings to the console);
    without, it shares this process's output."""
    environment_id = uuid.uuid4().hex
    env = {**base_env, **function_environment(fn, environment_id)}
    request_read, request_write = os.pipe()
    answer_read, answer_write = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local.worker", str(request_read), str(answer_write), functions_dir],
        env=env,
        cwd=str(ROOT),
        pass_fds=(request_read, answer_write),
        stdin=subprocess.DEVNULL,
        stdout=None if logs is None else subprocess.PIPE,
        stderr=None if logs is None else subprocess.STDOUT,
        # A process group of its own: Ctrl-C in the terminal reaches the launcher, which stops
        # the workers itself (no worker dies mid-invocation before the stop has begun).
        process_group=0,
    )
    os.close(request_read)
    os.close(answer_write)
    if logs is not None and process.stdout is not None:
        logs.follow(fn.function_name, process.stdout)
    return Worker(
        process=process,
        requests=Connection(request_write, readable=False),
        answers=Connection(answer_read, writable=False),
        fingerprint=_fingerprint(fn),
    )


@dataclass
class FunctionPool:
    """The execution environments of one function, at most ``size`` of them."""

    size: int
    _idle: list[Worker] = field(default_factory=list)
    _busy: list[Worker] = field(default_factory=list)
    _starting: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def acquire(self, fn: MotoFunction, start: Callable[[MotoFunction], Worker]) -> Worker:
        wanted = _fingerprint(fn)
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the local Lambda runtime is stopped")
                for stale in [w for w in self._idle if w.fingerprint != wanted]:
                    self._idle.remove(stale)
                    stale.kill()
                if self._idle:
                    worker = self._idle.pop()
                    self._busy.append(worker)
                    return worker
                if self.started < self.size:
                    self._starting += 1
                    break
                self._changed.wait()
        try:
            worker = start(fn)
        finally:
            with self._changed:
                self._starting -= 1
                self._changed.notify()
        with self._changed:
            self._busy.append(worker)
            if self._closed:
                worker.process.kill()  # stopped while it started: its invocation fails at once
        return worker

    def release(self, worker: Worker) -> None:
        with self._changed:
            self._busy.remove(worker)
            if self._closed:
                worker.kill()
                return
            worker.idle_since = time.monotonic()
            self._idle.append(worker)  # the most recent last: acquire() takes it, the others age
            self._changed.notify()

    def reap(self, idle_ttl_s: float, now: float | None = None) -> int:
        """Stop the environments idle for longer than ``idle_ttl_s``, as Lambda reclaims idle
        execution environments; the next invocation starts a fresh one. Returns how many."""
        now = time.monotonic() if now is None else now
        with self._changed:
            expired = [w for w in self._idle if now - w.idle_since > idle_ttl_s]
            self._idle = [w for w in self._idle if w not in expired]
        for worker in expired:
            worker.kill()
        return len(expired)

    def discard(self, worker: Worker) -> None:
        worker.kill()
        with self._changed:
            self._busy.remove(worker)
            self._changed.notify()

    def close(self) -> None:
        """Kill every environment: idle ones now, busy ones so that their invocation fails at once."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._changed.notify_all()
        for worker in idle:
            worker.kill()
        for worker in busy:
            if worker.process.poll() is None:
                worker.process.kill()  # its invoking thread sees the pipe close and discards it
        with self._changed:  # those invocations answer Runtime.ExitError within moments
            self._changed.wait_for(lambda: not self._busy, timeout=CLOSE_WAIT_S)

    @property
    def busy(self) -> int:
        """Invocations past their init phase, running the handler."""
        with self._changed:
            return sum(1 for w in self._busy if w.initialized)

    @property
    def started(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting


def worker_base_environment(process_env: Mapping[str, str]) -> dict[str, str]:
    """What every worker has besides its function's variables: the moto endpoint, paths, locale."""
    inherited = {k: os.environ[k] for k in INHERITED if k in os.environ}
    python_path = os.pathsep.join(str(p) for p in (ROOT, ROOT / "layers", FUNCTIONS_SRC))
    return {**inherited, **process_env, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1"}


@dataclass
class FunctionUsage:
    """What a function's invocations used, as the workers report it after each one."""

    invocations: int = 0
    cpu_s: float = 0.0
    duration_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, usage: Mapping[str, Any]) -> None:
        self.invocations += 1
        self.cpu_s += float(usage.get("cpu_s", 0.0))
        self.duration_s += float(usage.get("duration_s", 0.0))
        self.calls.update(usage.get("calls") or {})

    def copy(self) -> FunctionUsage:
        return FunctionUsage(self.invocations, self.cpu_s, self.duration_s, Counter(self.calls))


@dataclass
class ProcessRuntime:
    """Runs each invocation in a warm worker process of its function."""

    base_env: Mapping[str, str]
    concurrency: Mapping[str, int] = field(default_factory=dict)
    functions_dir: str = str(FUNCTIONS_SRC)
    logs: FunctionLogs | None = None
    _pools: dict[str, FunctionPool] = field(default_factory=dict)
    _usage: dict[str, FunctionUsage] = field(default_factory=dict)  # by Powertools service name
    idle_ttl_s: float = IDLE_TTL_S
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False
    _stopping: threading.Event = field(default_factory=threading.Event)
    _reaper: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._reaper = threading.Thread(target=self._reap_idle, name="workers-reaper", daemon=True)
        self._reaper.start()

    def _reap_idle(self) -> None:
        while not self._stopping.wait(min(REAP_EVERY_S, self.idle_ttl_s)):
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                pool.reap(self.idle_ttl_s)

    def pool(self, function_name: str) -> FunctionPool:
        with self._lock:
            if self._closed:
                raise RuntimeError("the local Lambda runtime is stopped")
            pool = self._pools.get(function_name)
            if pool is None:
                size = self.concurrency.get(function_name, DEFAULT_CONCURRENCY)
                pool = self._pools[function_name] = FunctionPool(size=max(1, size))
            return pool

    def invoke(self, fn: MotoFunction, event: Any) -> InvokeResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        refused = unsupported_runtime(fn, request_id)
        if refused is not None:
            return finish(fn, request_id, started, refused, True)
        try:
            pool = self.pool(fn.function_name)
            worker = pool.acquire(fn, self._start)
        except (RuntimeError, OSError) as exc:  # stopped, or the process could not start
            payload = json.dumps({"errorType": "Runtime.Unavailable", "errorMessage": str(exc)})
            return finish(fn, request_id, started, payload, True)
        if not worker.wait_ready():
            code = worker.process.poll()
            pool.discard(worker)
            message = f"RequestId: {request_id} Error: Runtime failed to start (exit status {code})"
            payload = json.dumps({"errorType": "Runtime.InitError", "errorMessage": message})
            return finish(fn, request_id, started, payload, True)
        started = time.monotonic()  # the function's timeout counts from the end of the init phase
        env = function_environment(fn, request_id)
        context = context_for(fn, request_id, env)
        # moto hands over the parsed request body or its JSON text; the worker parses text
        request = {"event": event.decode() if isinstance(event, bytes) else event, "context": asdict(context)}
        try:
            worker.requests.send_bytes(json.dumps(request).encode())
            if not worker.answers.poll(max(0.0, float(fn.timeout) - (time.monotonic() - started))):
                pool.discard(worker)
                return finish(fn, request_id, started, timed_out(request_id, float(fn.timeout)), True)
            answer = json.loads(worker.answers.recv_bytes())
        except (EOFError, OSError, BrokenPipeError):
            code = worker.process.wait()
            pool.discard(worker)
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
            payload = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message})
            return finish(fn, request_id, started, payload, True)
        worker.invocations += 1
        pool.release(worker)
        self._record_usage(fn, answer.get("usage") or {})
        return finish(fn, request_id, started, str(answer["payload"]), bool(answer["errored"]))

    def _record_usage(self, fn: MotoFunction, usage: Mapping[str, Any]) -> None:
        service = str(fn.environment_vars.get("POWERTOOLS_SERVICE_NAME") or fn.function_name)
        with self._lock:
            self._usage.setdefault(service, FunctionUsage()).add(usage)

    def usage(self) -> dict[str, FunctionUsage]:
        """Each function's usage so far (a copy), by its Powertools service name."""
        with self._lock:
            return {service: usage.copy() for service, usage in self._usage.items()}

    def _start(self, fn: MotoFunction) -> Worker:
        return start_worker(fn, self.base_env, self.functions_dir, self.logs)

    def close(self) -> None:
        """Stop every worker; invocations after this fail with ``Runtime.Unavailable``."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()

    def workers_started(self, function_name: str) -> int:
        return self.pool(function_name).started

    def busy(self, function_name: str) -> int:
        """How many invocations of the function are running their handler now."""
        with self._lock:
            pool = self._pools.get(function_name)
        return 0 if pool is None else pool.busy
