"""Fault injection: fail any AWS call of the code under test by operation name and position.

Every AWS request of boto3's and pynamodb's clients goes through botocore's
``BaseClient._make_api_call``, above botocore's retries. :class:`Faults` wraps it: the ``at``-th
call (of any operation, or of one named operation) made by the armed thread (the function under
test, not moto's executor threads that run workflow steps) can

* ``throttle``: answer a throttling error, as botocore raises it once its retries are spent;
* ``error``: answer a 500 service error;
* ``timeout``: apply the request, then raise a read timeout (the answer was lost);
* ``crash``: make the call, then kill the function (:class:`Crash`, a ``BaseException`` that no
  ``except Exception`` of Serval's catches, as a Lambda timeout or an out-of-memory kill).

:func:`explore` drives one scenario with a fault at every position the scenario reaches, for
every kind, each from a fresh start, and reports what it tried.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

Kind = Literal["throttle", "error", "timeout", "crash"]
KINDS: tuple[Kind, ...] = ("throttle", "error", "timeout", "crash")


class Crash(BaseException):
    """The function died right after an AWS call: nothing after it ran."""


@dataclass(frozen=True)
class Fault:
    kind: Kind
    at: int  # the at-th AWS call of the armed thread (1-based) ...
    operation: str | None = None  # ... of this operation only (e.g. "TransactWriteItems"); None: any

    def __str__(self) -> str:
        return f"{self.kind}@{self.operation or ''}#{self.at}"

    def hits(self, calls: list[str]) -> bool:
        """Whether the call just made (the last of ``calls``) is the one to fail."""
        if self.operation is None:
            return len(calls) == self.at
        return calls[-1] == self.operation and calls.count(self.operation) == self.at


@dataclass
class Faults:
    """The fault armed for one thread, and the calls that thread made."""

    fault: Fault | None = None
    thread: int | None = None
    calls: list[str] = field(default_factory=list)
    fired: str | None = None  # the operation the fault hit

    def arm(self, fault: Fault | None) -> None:
        self.fault, self.thread, self.calls, self.fired = fault, threading.get_ident(), [], None

    def disarm(self) -> None:
        self.thread = None

    def around(self, call: Callable[..., Any], client: BaseClient, operation: str, params: Any) -> Any:
        if threading.get_ident() != self.thread:
            return call(client, operation, params)
        self.calls.append(operation)
        fault = self.fault
        if fault is None or not fault.hits(self.calls):
            return call(client, operation, params)
        self.fired = operation
        if fault.kind in ("crash", "timeout"):  # the request is made, whatever its answer ...
            with contextlib.suppress(Exception):  # ... which nobody sees
                call(client, operation, params)
            if fault.kind == "crash":
                raise Crash(f"crashed after {operation}")
            raise ReadTimeoutError(endpoint_url=f"injected://{operation}")
        code, status = (
            ("ThrottlingException", 400) if fault.kind == "throttle" else ("InternalServerError", 500)
        )
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )


@contextmanager
def injected() -> Iterator[Faults]:
    """Route every botocore call through a :class:`Faults` for the duration."""
    faults = Faults()
    original = BaseClient._make_api_call

    def wrapped(client: BaseClient, operation: str, params: Any) -> Any:
        return faults.around(original, client, operation, params)

    BaseClient._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@dataclass
class Exploration:
    """Every fault point one scenario was driven through, and how each ended."""

    path: str
    tried: Counter[str] = field(default_factory=Counter)  # by kind
    converged: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # "<fault> on <operation>: <why>"
    operations: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.tried.values())


def explore(
    path: str,
    faults: Faults,
    scenario: Callable[[Fault | None], None],
    *,
    kinds: tuple[Kind, ...] = KINDS,
    max_calls: int = 60,
) -> Exploration:
    """Run ``scenario(fault)`` for each kind of fault at each position 1, 2, ... until the
    scenario ends before reaching it. ``scenario`` builds its own fresh state, arms ``faults``
    around the operation under test, repairs, and raises AssertionError if the end state is
    wrong (counted as lost)."""
    found = Exploration(path)
    for kind in kinds:
        for at in range(1, max_calls + 1):
            fault = Fault(kind, at)
            error = None
            try:
                scenario(fault)
            except AssertionError as exc:
                error = str(exc)
            if faults.fired is None:
                if error is not None:  # it fails with no fault at all: a broken scenario
                    found.lost.append(f"{kind} beyond the last call ({at}): {error}")
                break  # the operation makes fewer calls: every position of this kind was tried
            found.operations.add(faults.fired)
            found.tried[kind] += 1
            if error is None:
                found.converged[kind] += 1
            else:
                found.lost.append(f"{fault} on {faults.fired}: {error}")
        else:
            raise AssertionError(f"{path}: more than {max_calls} AWS calls")
    return found
