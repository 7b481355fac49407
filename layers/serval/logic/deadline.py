"""The deadline of one invocation for starting AWS request attempts (the api's ``AWS_CALL_DEADLINE_S``),
and whether a failure was AWS's passing trouble (worth answering "retry shortly")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from serval.adapters import clients


@contextmanager
def invocation_deadline() -> Iterator[None]:
    """No AWS request attempt starts once this function's ``AWS_CALL_DEADLINE_S`` has passed
    (0: no deadline); one that would start later raises ``Throttled``."""
    with clients.deadline(clients.invocation_deadline_s()):
        yield


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` came from AWS being busy or briefly unreachable (throttling, a 5xx or a
    timeout, after botocore's own retries), anywhere in its chain: the same call may succeed
    shortly, unlike a bug."""
    return clients.retryable(exc)
