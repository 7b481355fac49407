"""Sharded exports: how a project's task-id range splits, and the shard files' line format.

**Key ranges.** Task ids are ``t_`` + 26 Crockford base32 characters of the first 128 bits
of a SHA-256 digest (:func:`serval.ids.task_id`), so their values are uniform over
``[0, 2**128)`` and sort as strings the way they sort as numbers. ``K`` shards split that
space into ``K`` equal contiguous ranges; shard ``n`` holds the task ids ``lo <= id < hi``
of :func:`bounds`, where each boundary is itself a 26-character id. The first shard starts
at ``""`` and the last one has no upper end, so *every* string (an id of another shape,
say a time-ordered ``new_id`` or a test's ``t-00042``) falls in exactly one shard: such ids
only make the split less even, never wrong.

Boundaries are made of ``t_`` and base32 characters, all greater than ``#``; so the same
bounds applied to ``ANNOTATION#<task id>#<annotation id>`` keys select exactly the
annotations of the shard's tasks (see :mod:`serval.adapters.export_reader`).

**Shard files** are JSON Lines, one line per task in task-id order: a prepared
:class:`ExportRecord` (``{"task": ..., "annotation": ..., "image_size": [w, h] | null}``) or
an :class:`ExportFailure` (``{"failed": task id, "reason": ...}``).
"""

from __future__ import annotations

import bisect
import json
import math
from functools import lru_cache
from typing import Any

from serval import ids
from serval.domain.exports import ExportFailure, ExportRecord
from serval.domain.models import Annotation, Task

TASK_ID_PREFIX = "t_"
MAX_SHARDS = 1_000  # keeps the job item's shard sets and maps small


def shard_count(tasks: int, tasks_per_shard: int) -> int:
    """How many shards an export of ``tasks`` tasks takes (1: it runs in one piece)."""
    if tasks_per_shard < 1:
        raise ValueError("tasks_per_shard must be positive")
    return max(1, min(MAX_SHARDS, math.ceil(tasks / tasks_per_shard)))


@lru_cache(maxsize=64)
def boundaries(shards: int) -> tuple[str, ...]:
    """The ``shards - 1`` ascending task ids where a shard starts (shard 0 starts at "")."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be between 1 and {MAX_SHARDS}")
    space = 2**ids.STABLE_BITS
    return tuple(TASK_ID_PREFIX + ids.b32(i * space // shards, ids.STABLE_CHARS) for i in range(1, shards))


def bounds(shard: int, shards: int) -> tuple[str, str | None]:
    """Shard ``shard``'s task ids: ``lo <= id < hi`` (``hi`` None: no upper end)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards}")
    edges = boundaries(shards)
    lo = edges[shard - 1] if shard > 0 else ""
    hi = edges[shard] if shard < shards - 1 else None
    return lo, hi


def shard_of(task_id: str, shards: int) -> int:
    """The shard a task id falls in (the inverse of :func:`bounds`)."""
    return bisect.bisect_right(boundaries(shards), task_id)


def shard_key(project_id: str, job_id: str, shard: int) -> str:
    """Where a shard's prepared records are written, in the exports bucket."""
    return f"dataset-exports/{project_id}/{job_id}/shards/{shard:04d}.jsonl"


def encode_line(item: ExportRecord | ExportFailure) -> bytes:
    """One shard-file line (with its newline)."""
    body: dict[str, Any]
    if isinstance(item, ExportFailure):
        body = {"failed": item.task_id, "reason": item.reason}
    else:
        body = {
            "task": item.task.model_dump(mode="json"),
            "annotation": item.annotation.model_dump(mode="json") if item.annotation else None,
            "image_size": list(item.image_size) if item.image_size else None,
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_line(line: str) -> ExportRecord | ExportFailure:
    """The record or failure one shard-file line holds (the inverse of :func:`encode_line`)."""
    body = json.loads(line)
    if "failed" in body:
        return ExportFailure(str(body["failed"]), str(body["reason"]))
    size = body.get("image_size")
    return ExportRecord(
        Task.model_validate(body["task"]),
        Annotation.model_validate(body["annotation"]) if body.get("annotation") else None,
        (int(size[0]), int(size[1])) if size else None,
    )
