"""Count AWS API calls made by any botocore client in this process (boto3 and pynamodb alike)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.client import BaseClient


def _caller() -> str:
    """The Lambda function making the call (bound per invocation by the local runtime), or "-"."""
    from serval.settings import current_environment

    env = current_environment()
    return env.get("POWERTOOLS_SERVICE_NAME", "-") if env is not None else "-"


class CallLog:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.by_function: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, service: str, operation: str) -> None:
        name = f"{service}:{operation}"
        caller = _caller()
        with self._lock:
            self.calls[name] += 1
            self.by_function[(caller, name)] += 1

    def of_function(self, function: str) -> Counter[str]:
        """The calls one function (by its Powertools service name) made."""
        with self._lock:
            return Counter({name: n for (caller, name), n in self.by_function.items() if caller == function})

    def count(self, operation: str) -> int:
        """Calls of an operation, e.g. ``BatchWriteItem`` or ``dynamodb:Query``."""
        if ":" in operation:
            return self.calls[operation]
        return sum(n for name, n in self.calls.items() if name.split(":", 1)[1] == operation)

    def by_functions_total(self) -> int:
        """Calls made inside a Lambda function (not by the bench driver or the pollers)."""
        with self._lock:
            return sum(n for (caller, _), n in self.by_function.items() if caller != "-")

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.by_function.clear()


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
    try:
        yield log
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
