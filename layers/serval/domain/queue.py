"""The labelling and review queues: ordering keys, who may take a task, and the API's shapes.

Where a task sits in GSI1 (partition ``PROJECT#<pid>#STATUS#<status>``), by status:

* ``queued``: the queue key, fixed when the task enters the queue (:func:`queue_key`), so one
  Query reads the head of the queue in the project's priority mode;
* ``leased``: ``L#<lease_until>#<task id>``, so leases that ended before now are one key range;
* ``in_review``: ``L#<review lease_until, 0 when free>#<task id>``: free and expired review
  leases are the same key range;
* every other status: ``<created_at>#<task id>`` (as for listings).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serval import keys
from serval.domain.lifecycle import TaskStatus
from serval.domain.models import Annotation, PriorityMode, TaskDetail
from serval.domain.results import Result

# Candidates read per Query: racing callers spread over this many tasks at the head.
CANDIDATE_WINDOW = 32


def queue_key(
    mode: PriorityMode,
    *,
    task_id: str,
    created_at: str,
    priority: int = 0,
    min_score: float | None = None,
    draw: str | None = None,
    position: int = 0,
) -> str:
    """The task's GSI1SK while it is queued, for the project's priority mode.

    * ``priority``: highest priority first, then oldest first;
    * ``fifo``: oldest first (``position``, the task's place in its import, orders one call's tasks);
    * ``random``: a random draw made when the task enters the queue;
    * ``least_confident``: lowest prediction score first (the task's least sure prediction);
      a task without predictions counts as score 0, since nothing is known about it.
    """
    if mode is PriorityMode.PRIORITY:
        return keys.queue_sk_priority(priority, created_at, task_id, position)
    if mode is PriorityMode.FIFO:
        return keys.queue_sk_fifo(created_at, task_id, position)
    if mode is PriorityMode.RANDOM:
        return keys.queue_sk_random(draw or secrets.token_hex(8), task_id)
    return keys.queue_sk_confidence(
        min_score if min_score is not None else 0.0, created_at, task_id, position
    )


def may_take(
    user_id: str,
    assignee: str | None,
    annotators: Sequence[str],
    skipped_by: Sequence[str],
    *,
    assigned_until: int | None = None,
    now: int = 0,
) -> bool:
    """Whether the queue may offer a task to ``user_id`` (mirrors the lease's condition): not
    reserved for someone else (a reservation that ended before ``now`` is anyone's), not
    labelled or skipped by them."""
    free = assignee in (None, user_id) or (assigned_until is not None and assigned_until < now)
    return free and user_id not in annotators and user_id not in skipped_by


def round_target(distinct_annotators: int, overlap: int) -> TaskStatus:
    """Where a submit sends the task: submitted once ``overlap`` distinct people labelled it."""
    return TaskStatus.SUBMITTED if distinct_annotators >= overlap else TaskStatus.QUEUED


# ---- API shapes --------------------------------------------------------------------------------


class Lease(BaseModel):
    """A lease on a task (labelling or review); ``task`` is null when the queue has nothing for you."""

    task: TaskDetail | None = None
    lease_until: int | None = Field(default=None, description="Lease expiry, epoch seconds.")


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128, description="A project member who may annotate.")


class Submission(BaseModel):
    annotation: Annotation
    status: TaskStatus = Field(description="submitted, or queued while the task needs more annotators.")


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=2_000)
    results: list[Result] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Edit and approve: the reviewer's corrected results, kept as a new annotation.",
    )


class ReviewOutcome(BaseModel):
    task_id: str
    status: TaskStatus
    annotation: Annotation | None = Field(default=None, description="The reviewer's edit, if any.")
