"""Domain events: built from table changes, published on the event bus.

An event's id is stable (the change's stream record id), so a consumer that sees it twice
can drop the repeat. Payloads are lean: ids and counts, never media or annotation bodies.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
JOB_FINISHED = frozenset({"succeeded", "failed"})


class DomainEvent(BaseModel):
    id: str = Field(description="Stable id: the same change always yields the same id.")
    type: str
    occurred_at: str
    project_id: str
    data: dict[str, Any]


# ---- payloads: one model per event type; docs/events.md shows their JSON Schemas ----------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskRef(_Payload):
    task_id: str


class TaskCreated(TaskRef):
    media_type: str | None
    import_id: str | None


class TaskStatusChanged(TaskRef):
    from_: str | None = Field(alias="from", description="The status the task left.")
    to: str = Field(description="The status the task entered.")


class ImportCompleted(_Payload):
    import_id: str | None
    status: str = Field(description="completed, completed_with_errors or failed.")
    tasks_created: int
    duplicates: int
    errors: int


class ProjectCreated(_Payload):
    name: str | None


class JobCompleted(_Payload):
    job_id: str | None
    kind: str | None
    status: str = Field(description="succeeded or failed.")
    done: int = Field(description="Items processed.")
    failed: int = Field(description="Items that could not be processed.")


# Job kinds whose completion is announced, and as which event.
JOB_EVENTS: dict[str, str] = {
    "audit_export": "audit_export.completed",
    "dataset_export": "export.completed",
    "bulk": "bulk.completed",
}

# Event type -> its payload model. Every event Serval publishes is listed here.
PAYLOADS: dict[str, type[_Payload]] = {
    "project.created": ProjectCreated,
    "task.created": TaskCreated,
    "task.deleted": TaskRef,
    **{event: TaskStatusChanged for event in STATUS_EVENTS.values()},
    "import.completed": ImportCompleted,
    **{event: JobCompleted for event in JOB_EVENTS.values()},
}


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
    if entity == "job" and kind == "MODIFY":
        job_kind, status = _str(new, "kind"), _str(new, "status")
        if _str(old, "status") != status and status in JOB_FINISHED and job_kind in JOB_EVENTS:
            outcome: dict[str, Any] = {
                "job_id": _str(new, "job_id"),
                "kind": job_kind,
                "status": status,
                "done": _num(new, "done"),
                "failed": _num(new, "failed"),
            }
            return DomainEvent(
                id=event_id, type=JOB_EVENTS[job_kind], occurred_at=at, project_id=project_id, data=outcome
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


def schema_markdown() -> str:
    """docs/events.md: the envelope and each event type's payload schema (``make events-doc``)."""
    import json

    def block(schema: dict[str, Any]) -> str:
        return "```json\n" + json.dumps(schema, indent=2, sort_keys=True) + "\n```\n"

    parts = [
        "# Domain events\n",
        "Serval publishes these on its EventBridge bus (`serval-<env>-events`, source `serval`, "
        "detail-type = the event type) from the tasks table's stream, so a committed change always "
        "yields its event at least once. `id` is stable: the stream record's id, the same on every "
        "delivery. Payloads are lean: ids and counts, never media or annotation bodies. "
        "Generated from `layers/serval/domain/events.py` by `make events-doc`; a test keeps it current.\n",
        "## Envelope (the EventBridge `detail`)\n",
        block(DomainEvent.model_json_schema()),
    ]
    for event_type, model in PAYLOADS.items():
        parts += [f"## `{event_type}`\n", block(model.model_json_schema(by_alias=True))]
    return "\n".join(parts)


def validate_payload(event: DomainEvent) -> None:
    """Check an event's data against its documented payload model (raises on a mismatch)."""
    PAYLOADS[event.type].model_validate(event.data)
