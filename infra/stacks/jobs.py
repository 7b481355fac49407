from __future__ import annotations

from typing import Any

from infra.spec import ServalSpec
from infra.stacks.base import ServalStack

JOBS_QUEUE = "jobs"


class JobsStack(ServalStack):
    """Async jobs: the jobs queue (with DLQ) -> the jobs function. The API enqueues by queue name."""

    concern = "Jobs"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        self.functions = self.build_functions()

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        return (JOBS_QUEUE,)
