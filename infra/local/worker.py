"""One warm Lambda execution environment: ``python -m infra.local.worker READ_FD WRITE_FD``.

The process is started by :mod:`infra.local.workers` with the function's whole environment
(its configured variables, the runtime's ``AWS_LAMBDA_*`` variables, ``_HANDLER``, and the
endpoint and credentials of the local moto server) as its own ``os.environ``, as Lambda
starts a runtime. It imports the handler once (the cold start), then serves one invocation at
a time over a pipe (after a ``ready`` once the import is done): a JSON request (event and context fields) in, a JSON answer
(``payload``, ``errored``, and the invocation's ``usage``: AWS requests, CPU and duration) out. It talks to moto over HTTP like any Lambda talks to AWS, and
exits when the pipe closes.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from infra.local.lambda_runtime import HandlerCache, LambdaContext, run_handler

READY = b"ready"  # sent once the handler is imported


class CallCounter:
    """The AWS requests this worker's handler makes, by ``service:Operation`` (for the usage the
    runtime reports: requests and CPU per invocation, as the bench's metering reads them)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        calls = self.calls

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            calls[f"{client.meta.service_model.service_name}:{operation_name}"] += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting  # type: ignore[attr-defined]

    def take(self) -> dict[str, int]:
        taken = dict(self.calls)
        self.calls.clear()
        return taken


def serve(requests: Connection, answers: Connection, handlers: HandlerCache) -> None:
    handler_name = os.environ.get("_HANDLER", "")
    try:  # the init phase: import the handler before the first invocation's clock starts
        handlers.resolve(handler_name)
    except Exception:  # reported by the first invocation, as the runtime reports an init error
        logging.getLogger(__name__).debug("handler import failed", exc_info=True)
    counter = CallCounter()
    counter.install()
    answers.send_bytes(READY)
    while True:
        try:
            request: dict[str, Any] = json.loads(requests.recv_bytes())
        except EOFError:
            return
        context = LambdaContext(**request["context"])
        counter.take()
        started, cpu_started = time.perf_counter(), time.process_time()
        payload, errored = run_handler(handler_name, request["event"], context, handlers)
        seconds = time.perf_counter() - started
        report(context, seconds)
        usage = {"calls": counter.take(), "cpu_s": time.process_time() - cpu_started, "duration_s": seconds}
        answers.send_bytes(json.dumps({"payload": payload, "errored": errored, "usage": usage}).encode())


def report(context: LambdaContext, seconds: float) -> None:
    """The platform's line after each invocation, as Lambda writes it to the function's log."""
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"REPORT RequestId: {context.aws_request_id}\tDuration: {seconds * 1000:.2f} ms\t"
        f"Memory Size: {context.memory_limit_in_mb} MB\tMax Memory Used: {max_rss_mb} MB",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    read_fd, write_fd, functions_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    handlers = HandlerCache(functions_dir=functions_dir)
    with Connection(read_fd, writable=False) as requests, Connection(write_fd, readable=False) as answers:
        serve(requests, answers, handlers)


if __name__ == "__main__":
    main()
