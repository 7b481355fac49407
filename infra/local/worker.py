"""One warm Lambda execution environment: ``python -m infra.local.worker READ_FD WRITE_FD``.

The process is started by :mod:`infra.local.workers` with the function's whole environment
(its configured variables, the runtime's ``AWS_LAMBDA_*`` variables, ``_HANDLER``, and the
endpoint and credentials of the local moto server) as its own ``os.environ``, as Lambda
starts a runtime. It imports the handler once (the cold start), then serves one invocation at
a time over a pipe (after a ``ready`` once the import is done): a JSON request (event and context fields) in, a JSON answer
(``payload``, ``errored``) out. It talks to moto over HTTP like any Lambda talks to AWS, and
exits when the pipe closes.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from infra.local.lambda_runtime import HandlerCache, LambdaContext, run_handler

READY = b"ready"  # sent once the handler is imported


def serve(requests: Connection, answers: Connection, handlers: HandlerCache) -> None:
    handler_name = os.environ.get("_HANDLER", "")
    try:  # the init phase: import the handler before the first invocation's clock starts
        handlers.resolve(handler_name)
    except Exception:  # reported by the first invocation, as the runtime reports an init error
        logging.getLogger(__name__).debug("handler import failed", exc_info=True)
    answers.send_bytes(READY)
    while True:
        try:
            request: dict[str, Any] = json.loads(requests.recv_bytes())
        except EOFError:
            return
        context = LambdaContext(**request["context"])
        started = time.perf_counter()
        payload, errored = run_handler(handler_name, request["event"], context, handlers)
        report(context, time.perf_counter() - started)
        answers.send_bytes(json.dumps({"payload": payload, "errored": errored}).encode())


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
