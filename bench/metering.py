"""Count AWS API calls: those of any botocore client in this process (boto3 and pynamodb alike),
and those the local stack's function workers report after each invocation.

With the local stack's process runtime, every function runs in worker processes of its own;
each worker counts its handler's requests and reports them with the invocation's answer
(:class:`infra.local.workers.FunctionUsage`). The calls of this process (the bench driver, the
pollers, handlers run in-process by ``mock_aws`` tests) are counted here. A call is counted
once, where it is made.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient

from infra.local import patches
from infra.local.workers import FunctionUsage


def _caller() -> str:
    """The Lambda function making the call (bound per invocation by the local runtime), or "-"."""
    from serval.settings import current_environment

    env = current_environment()
    return env.get("POWERTOOLS_SERVICE_NAME", "-") if env is not None else "-"


class CallLog:
    def __init__(self) -> None:
        self._here: Counter[str] = Counter()
        self._here_by_function: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._runtime: Any = None  # the process runtime while metering, if one is in use
        self._baseline: dict[str, FunctionUsage] = {}
        self._workers: dict[str, FunctionUsage] = {}  # frozen at the end of metering

    def _attach(self, runtime: Any) -> None:
        self._runtime = runtime
        self._baseline = runtime.usage() if runtime is not None else {}

    def _detach(self) -> None:
        self._workers = self.worker_usage()
        self._runtime = None

    def worker_usage(self) -> dict[str, FunctionUsage]:
        """What each function's workers used while metering (by Powertools service name)."""
        if self._runtime is None:
            return self._workers
        usage: dict[str, FunctionUsage] = {}
        for service, now in self._runtime.usage().items():
            before = self._baseline.get(service, FunctionUsage())
            usage[service] = FunctionUsage(
                now.invocations - before.invocations,
                now.cpu_s - before.cpu_s,
                now.duration_s - before.duration_s,
                now.calls - before.calls,
            )
        return usage

    @property
    def calls(self) -> Counter[str]:
        with self._lock:
            total = Counter(self._here)
        for usage in self.worker_usage().values():
            total.update(usage.calls)
        return total

    @property
    def by_function(self) -> Counter[tuple[str, str]]:
        with self._lock:
            total = Counter(self._here_by_function)
        for service, usage in self.worker_usage().items():
            total.update({(service, name): n for name, n in usage.calls.items()})
        return total

    def add(self, service: str, operation: str) -> None:
        name = f"{service}:{operation}"
        caller = _caller()
        with self._lock:
            self._here[name] += 1
            self._here_by_function[(caller, name)] += 1

    def of_function(self, function: str) -> Counter[str]:
        """The calls one function (by its Powertools service name) made."""
        return Counter({name: n for (caller, name), n in self.by_function.items() if caller == function})

    def count(self, operation: str) -> int:
        """Calls of an operation, e.g. ``BatchWriteItem`` or ``dynamodb:Query``."""
        calls = self.calls
        if ":" in operation:
            return calls[operation]
        return sum(n for name, n in calls.items() if name.split(":", 1)[1] == operation)

    def by_functions_total(self) -> int:
        """Calls made inside a Lambda function (not by the bench driver or the pollers)."""
        return sum(n for (caller, _), n in self.by_function.items() if caller != "-")

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def clear(self) -> None:
        with self._lock:
            self._here.clear()
            self._here_by_function.clear()
        if self._runtime is not None:
            self._baseline = self._runtime.usage()


# Sees every call as it is made: (caller, service, operation, parameters, response or None if it failed).
Observer = Callable[[str, str, str, dict[str, Any], Any], None]


@contextmanager
def metered(observer: Observer | None = None) -> Iterator[CallLog]:
    """Every API call made while the block runs, by operation name (and each one, with its
    parameters and response, to ``observer``)."""
    log = CallLog()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        log.add(service, operation_name)
        if observer is None:
            return original(self, operation_name, api_params)
        response = None
        try:
            response = original(self, operation_name, api_params)
            return response
        finally:
            observer(_caller(), service, operation_name, api_params, response)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    log._attach(patches.current_runtime())
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
        log._detach()
