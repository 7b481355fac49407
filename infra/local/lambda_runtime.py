"""An in-process stand-in for the Lambda Python runtime, behind moto's Lambda service.

moto runs every function through ``LambdaFunction._invoke_lambda(self, event)``:
boto3 ``invoke``, Step Functions tasks, S3/SNS/EventBridge notifications and
event-source mappings. :func:`invoke` is what :mod:`infra.local.patches` puts
there. It runs the handler named by the function's own configuration (the
``Handler``, ``Environment``, ``Timeout`` and ``MemorySize`` given to
``CreateFunction``), so what runs locally is what was deployed to moto.

Like the AWS runtime it
- imports the handler module once (the cold start) and keeps it warm,
- passes a context object with the runtime's attributes,
- answers an exception, an import error or an unserializable result with the
  runtime's error payload (``errorMessage``, ``errorType``, ``stackTrace``),
- reports a run longer than the function's timeout as ``Sandbox.Timedout`` and a
  response over 6 MB as ``Function.ResponseSizeTooLarge`` (it cannot stop a thread,
  so it reports them when the handler returns).

The function's environment is bound with :func:`serval.settings.invocation_environment`
for the invocation; ``os.environ`` is shared by every function and never changed, except that
the metrics namespace, the same for every function, is put there for Powertools, which reads
it when a handler module is imported. Each function's own service name
(``POWERTOOLS_SERVICE_NAME``) cannot be, so handlers run here log the process's; the workers
of :mod:`infra.local.workers` run each function with its own environment.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.spec import FUNCTIONS_SRC
from serval.settings import invocation_environment

MAX_SYNC_RESPONSE_BYTES = 6_291_556  # the Lambda limit for a synchronous response payload
SUPPORTED_RUNTIME_PREFIX = "python3"

InvokeResult = tuple[str, bool, str]  # (payload, errored, log tail): moto's contract


class MotoFunction(Protocol):
    """The attributes of ``moto.awslambda.models.LambdaFunction`` the runtime reads."""

    function_name: str
    function_arn: str
    handler: str | None
    run_time: str | None
    timeout: int
    memory_size: int
    version: str | int
    region: str
    environment_vars: dict[str, str]


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object (``awslambdaric``)."""

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str  # the runtime reads it from the environment: a string
    log_group_name: str
    log_stream_name: str
    deadline_epoch_ms: int
    client_context: Any = None
    identity: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_epoch_ms - int(time.time() * 1000))

    def log(self, msg: str) -> None:
        sys.stdout.write(str(msg))


class _RuntimeError(Exception):
    """A failure of the runtime itself (not of the handler): reported with its AWS error type."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> str:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack}
    )


def _decimal_default(value: object) -> float:
    # The Python runtime serializes Decimal (what boto3's DynamoDB resource returns) as a number.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@dataclass
class HandlerCache:
    """Imported handlers by ``module.function`` name: the warm execution environments."""

    functions_dir: str = str(FUNCTIONS_SRC)
    _handlers: dict[str, Callable[[Any, LambdaContext], Any]] = field(default_factory=dict)

    def resolve(self, handler: str) -> Callable[[Any, LambdaContext], Any]:
        cached = self._handlers.get(handler)
        if cached is not None:
            return cached
        if self.functions_dir not in sys.path:
            sys.path.insert(0, self.functions_dir)
        module_name, _, attribute = handler.rpartition(".")
        if not module_name:
            raise _RuntimeError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise _RuntimeError(
                "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
            ) from exc
        function = getattr(module, attribute, None)
        if not callable(function):
            raise _RuntimeError(
                "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'"
            )
        self._handlers[handler] = function
        return function


HANDLERS = HandlerCache()


def function_environment(fn: MotoFunction, request_id: str) -> dict[str, str]:
    """The environment the function sees: its configured variables plus the runtime's own."""
    log_stream = f"{time.strftime('%Y/%m/%d')}/[{fn.version}]{request_id.replace('-', '')}"
    return {
        **{k: str(v) for k, v in fn.environment_vars.items()},
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
        "_HANDLER": fn.handler or "",
    }


def _parse_event(event: Any) -> Any:
    # moto hands over the parsed request body, or the string "{}" for an empty one.
    if isinstance(event, (str, bytes)):
        return json.loads(event) if event else {}
    return {} if event is None else event


def context_for(fn: MotoFunction, request_id: str, env: Mapping[str, str]) -> LambdaContext:
    return LambdaContext(
        aws_request_id=request_id,
        function_name=fn.function_name,
        function_version=str(fn.version),
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        log_group_name=env["AWS_LAMBDA_LOG_GROUP_NAME"],
        log_stream_name=env["AWS_LAMBDA_LOG_STREAM_NAME"],
        deadline_epoch_ms=int(time.time() * 1000) + int(fn.timeout) * 1000,
    )


def timed_out(request_id: str, timeout_s: float) -> str:
    return json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
    )


def finish(fn: MotoFunction, request_id: str, started: float, payload: str, errored: bool) -> InvokeResult:
    """The runtime's checks after a run (timeout, response size) and the log tail moto returns."""
    elapsed = time.monotonic() - started
    if elapsed > float(fn.timeout):
        payload, errored = timed_out(request_id, float(fn.timeout)), True
    elif len(payload.encode()) > MAX_SYNC_RESPONSE_BYTES:
        payload, errored = (
            _error_payload(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({MAX_SYNC_RESPONSE_BYTES} bytes).",
                request_id,
                [],
            ),
            True,
        )
    logs = (
        f"START RequestId: {request_id} Version: {fn.version}\n"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {elapsed * 1000:.2f} ms\t"
        f"Memory Size: {fn.memory_size} MB{chr(10) + payload if errored else ''}"
    )
    return payload, errored, logs


def unsupported_runtime(fn: MotoFunction, request_id: str) -> str | None:
    """The runtime's error payload for a function this runtime cannot run, else None."""
    if (fn.run_time or "").startswith(SUPPORTED_RUNTIME_PREFIX):
        return None
    message = f"The local stack runs Python functions only, not {fn.run_time!r}"
    return _error_payload("Runtime.InvalidRuntime", message, request_id, [])


def invoke(fn: MotoFunction, event: Any, handlers: HandlerCache = HANDLERS) -> InvokeResult:
    """Run one invocation of ``fn`` in this process: moto's ``_invoke_lambda`` contract."""
    request_id = str(uuid.uuid4())
    started = time.monotonic()
    env = function_environment(fn, request_id)
    refused = unsupported_runtime(fn, request_id)
    if refused is not None:
        return finish(fn, request_id, started, refused, True)
    if "POWERTOOLS_METRICS_NAMESPACE" in env:
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", env["POWERTOOLS_METRICS_NAMESPACE"])
    with _environment_of(fn.function_name), invocation_environment(env):
        payload, errored = run_handler(fn.handler or "", event, context_for(fn, request_id, env), handlers)
    return finish(fn, request_id, started, payload, errored)


# One invocation at a time per function, as one Lambda execution environment serves one
# request at a time: handlers keep per-invocation state in module objects (Powertools'
# resolver keeps the current event and route), which concurrent requests would share.
_environments: dict[str, threading.Lock] = {}
_environments_lock = threading.Lock()


def _environment_of(function_name: str) -> threading.Lock:
    with _environments_lock:
        return _environments.setdefault(function_name, threading.Lock())


def run_handler(
    handler_name: str, event: Any, context: LambdaContext, handlers: HandlerCache
) -> tuple[str, bool]:
    """Resolve and run the handler on the event: (payload, errored) as the Python runtime answers."""
    request_id = context.aws_request_id
    try:
        handler = handlers.resolve(handler_name)
    except _RuntimeError as exc:
        return _error_payload(exc.error_type, str(exc), request_id, []), True
    try:
        result = handler(_parse_event(event), context)
    except Exception as exc:
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])  # drop this frame
        return _error_payload(type(exc).__name__, str(exc), request_id, stack), True
    try:
        return json.dumps(result, default=_decimal_default), False
    except (TypeError, ValueError) as exc:
        return _error_payload(
            "Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id, []
        ), True
