from __future__ import annotations

from typing import Any

from infra.spec import ServalSpec
from infra.stacks.base import ServalStack

JOBS_QUEUE = "jobs"
JOBS_DLQ = "jobs-dlq"


class JobsStack(ServalStack):
    """Async jobs: the jobs queue -> the jobs function; its dead letters (the jobs-dlq queue) ->
    the jobs-dlq function, which fails their jobs. The API enqueues by queue name."""

    concern = "Jobs"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        self.functions = self.build_functions()

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        return (JOBS_DLQ, JOBS_QUEUE)
