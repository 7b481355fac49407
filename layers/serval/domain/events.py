"""Domain events: built from table changes, published on the event bus.

An event's id is stable (the change's stream record id), so a consumer that sees it twice
can drop the repeat. Payloads are lean: ids and counts, never media or annotation bodies.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

SOURCE = "serval"

# Task status -> the event a move into it announces.
STATUS_EVENTS: dict[str, str] = {
    "prelabeled": "task.prelabeled",
    "leased": "task.leased",
    "submitted": "annotation.submitted",
    "approved": "review.approved",
    "rejected": "review.rejected",
    "exported": "task.completed",
}
IMPORT_FINISHED = frozenset({"completed", "completed_with_errors", "failed"})


class DomainEvent(BaseModel):
    id: str = Field(description="Stable id: the same change always yields the same id.")
    type: str
    occurred_at: str
    project_id: str
    data: dict[str, Any]


def _str(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _num(image: dict[str, Any], name: str) -> int:
    value = image.get(name)
    return int(value["N"]) if isinstance(value, dict) and "N" in value else 0


def from_change(
    event_id: str, kind: str, old: dict[str, Any], new: dict[str, Any], at: str
) -> DomainEvent | None:
    """The event one tasks-table change announces, or None (counters, tag links...)."""
    image = new or old
    entity = _str(image, "entity")
    project_id = _str(image, "project_id")
    if not project_id:
        return None
    if entity == "task":
        base = {"task_id": _str(image, "task_id")}
        if kind == "INSERT":
            data = base | {"media_type": _str(new, "media_type"), "import_id": _str(new, "import_id")}
            return DomainEvent(
                id=event_id, type="task.created", occurred_at=at, project_id=project_id, data=data
            )
        if kind == "REMOVE":
            return DomainEvent(
                id=event_id, type="task.deleted", occurred_at=at, project_id=project_id, data=base
            )
        before, after = _str(old, "status"), _str(new, "status")
        if before != after and after in STATUS_EVENTS:
            data = base | {"from": before, "to": after}
            return DomainEvent(
                id=event_id, type=STATUS_EVENTS[after], occurred_at=at, project_id=project_id, data=data
            )
        return None
    if entity == "import" and kind == "MODIFY":
        if _str(old, "status") != _str(new, "status") and _str(new, "status") in IMPORT_FINISHED:
            counts: dict[str, Any] = {
                "import_id": _str(new, "import_id"),
                "status": _str(new, "status"),
                "tasks_created": _num(new, "tasks_created"),
                "duplicates": _num(new, "duplicates"),
                "errors": _num(new, "errors"),
            }
            return DomainEvent(
                id=event_id, type="import.completed", occurred_at=at, project_id=project_id, data=counts
            )
        return None
    if entity == "project" and kind == "INSERT":
        return DomainEvent(
            id=event_id,
            type="project.created",
            occurred_at=at,
            project_id=project_id,
            data={"name": _str(new, "name")},
        )
    return None
