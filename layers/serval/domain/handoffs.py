"""Step handoffs: the result a human wait hands its execution, kept in an outbox until delivered.

A submit that completes a round, a review decision and a manager's requeue from review each
commit their change and, in the same transaction, the handoff: the step it completes and the
output ``SendTaskSuccess`` gives it. The handoff stays on the task until the step has it. It
goes when the send succeeds, or when the execution runs its next step, which proves it was
delivered. A handoff still there :data:`GRACE_S` after its commit is overdue: the reconciler
(:mod:`serval.logic.reconcile`) delivers it, or re-creates a dead execution and then delivers it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from serval.domain.lifecycle import WaitStep

# Seconds after its commit before a handoff is the reconciler's: well past a send's own retries.
GRACE_S = 60

TOKEN_ATTRIBUTE = {WaitStep.LABEL: "label_token", WaitStep.REVIEW: "review_token"}


@dataclass(frozen=True)
class Handoff:
    step: WaitStep
    output: dict[str, Any]

    @property
    def token_attribute(self) -> str:
        return TOKEN_ATTRIBUTE[self.step]

    def to_json(self) -> str:
        return json.dumps({"step": self.step.value, "output": self.output}, ensure_ascii=False)

    @classmethod
    def from_stored(cls, stored: Any) -> Handoff | None:
        """The handoff as stored on a task item (its JSON, or that JSON decoded); None for none."""
        if stored is None:
            return None
        value = json.loads(stored) if isinstance(stored, str) else stored
        return cls(step=WaitStep(value["step"]), output=dict(value["output"]))


class Delivery(StrEnum):
    """What one attempt to hand a step its result came to."""

    DELIVERED = "delivered"  # the step has it
    STEP_GONE = "step_gone"  # the token answers nothing: completed already, or its execution ended
    NOT_DELIVERED = "not_delivered"  # Step Functions could not be reached: the outbox keeps it


class Execution(StrEnum):
    """An execution's state, as far as a repair needs it."""

    RUNNING = "running"
    ENDED = "ended"  # succeeded, failed, timed out or aborted
    MISSING = "missing"  # never existed, or no longer kept (the local stack after a restart)


class Repair(StrEnum):
    """What the reconciler did with one overdue handoff, or one execution."""

    DELIVERED = "delivered"  # sent to the waiting step
    ALREADY_DELIVERED = "already_delivered"  # the running execution had moved on: outbox cleared
    RESUMED = "resumed"  # the execution was gone: a new one is asked for, then the handoff is sent
    SUPERSEDED = "superseded"  # the task changed meanwhile (deleted, or the entry went): nothing to do
    RETRY = "retry"  # Step Functions could not be reached: tried again on the next run
    # a task waits in Label or Review under a dead execution's token: the starter re-creates it
    EXECUTION_RESUMED = "execution_resumed"
    # an execution runs for a task that is gone, or that another execution has taken over
    EXECUTION_STOPPED = "execution_stopped"
    # the project's window has free slots while tasks wait in its backlog (a refill was lost)
    BACKLOG_REFILLED = "backlog_refilled"
