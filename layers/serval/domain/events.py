"""Domain events: built from table changes, published on the event bus and sent to webhooks.

An event's id is stable (the change's stream record id), so a consumer that sees it twice
can drop the repeat; a change that announces more than one event gives the first the record's
id and the n-th after it ``<record id>.<n>``. Payloads are lean: ids and counts, never media,
annotation bodies or secrets. Every event's data is built through its payload model, so an
event that does not match its documented schema is never emitted.

``CATALOGUE`` is the one list of event types: the docs (:func:`schema_markdown`), the tests
and the subscriptions API's event-type filters (``EVENT_TYPES``) all read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "serval"
VERSION = "v1"

# Task status -> the events a move into it announces, in this order.
STATUS_EVENTS: dict[str, tuple[str, ...]] = {
    "prelabeled": ("task.prelabeled",),
    "leased": ("task.leased",),
    "submitted": ("annotation.submitted",),
    "approved": ("review.approved",),
    "rejected": ("review.rejected",),
    "exported": ("task.exported", "task.completed"),
}
IMPORT_COMPLETED = frozenset({"completed", "completed_with_errors"})
IMPORT_FAILED = "failed"
JOB_FINISHED = frozenset({"succeeded", "failed"})
WEBHOOK_DISABLED = "disabled"
TEST_MESSAGE = "This is a test event from Serval."

# Job kinds whose completion is announced, and as which event.
JOB_EVENTS: dict[str, str] = {
    "audit_export": "audit_export.completed",
    "dataset_export": "export.completed",
    "bulk": "bulk.completed",
}


class DomainEvent(BaseModel):
    """The envelope every event shares; ``data`` is the payload of its ``type``."""

    id: str = Field(
        description="Stable id: the same change always yields the same id (a webhook's "
        "`webhook-id` header). Deduplicate on it."
    )
    type: str = Field(description="The event type: one of the types below.")
    version: Literal["v1"] = Field(
        default="v1", description="The payload schema version: the schemas of this document are v1."
    )
    occurred_at: str = Field(
        description="When the change happened: ISO-8601 UTC with milliseconds, e.g. "
        "2025-01-15T09:30:12.345Z. Order events by it (delivery order is not guaranteed)."
    )
    project_id: str | None = Field(
        description="The project the event belongs to; null only for organisation-wide webhook events."
    )
    data: dict[str, Any] = Field(description="The payload: its schema depends on the type.")


# ---- payloads: one model per event type; docs/events.md shows their JSON Schemas ----------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskRef(_Payload):
    task_id: str


class TaskCreated(TaskRef):
    media_type: str | None
    import_id: str | None = Field(description="The import that created it; null when it came from an upload.")


class TaskStatusChanged(TaskRef):
    from_: str | None = Field(alias="from", description="The status the task left.")
    to: str = Field(description="The status the task entered.")


class ImportCompleted(_Payload):
    import_id: str | None
    status: Literal["completed", "completed_with_errors"]
    tasks_created: int
    duplicates: int
    errors: int


class ImportFailed(_Payload):
    import_id: str | None
    status: Literal["failed"]
    tasks_created: int = Field(description="Tasks created before it failed (they are kept).")
    duplicates: int
    errors: int
    reason: str | None = Field(description="Why it failed, when recorded on the import.")


class ProjectCreated(_Payload):
    name: str | None


class JobCompleted(_Payload):
    job_id: str | None
    kind: str | None
    status: str = Field(description="succeeded or failed.")
    done: int = Field(description="Items processed.")
    failed: int = Field(description="Items that could not be processed.")


class MemberAdded(_Payload):
    user_id: str = Field(description="The member's user id (Cognito sub).")
    role: str = Field(description="The project role: manager, reviewer, annotator or viewer.")
    added_by: str | None = Field(description="The user id of who added the member.")


class MemberRemoved(_Payload):
    user_id: str = Field(description="The former member's user id (Cognito sub).")
    role: str = Field(description="The project role the member held.")
    added_by: None = Field(description="Always null for a removal.")


class WebhookDisabled(_Payload):
    webhook_id: str
    scope: Literal["project", "org"] = Field(
        description="project: a project's subscription; org: the organisation's (envelope project_id null)."
    )
    url: str = Field(
        description="The subscription's endpoint: scheme, host and path only (a query may hold a consumer's token)."
    )
    reason: str | None = Field(description="Why Serval disabled it.")
    consecutive_failures: int = Field(description="Deliveries that failed in a row before it was disabled.")


class WebhookTest(_Payload):
    webhook_id: str = Field(description="The subscription the test was sent to.")
    message: str = Field(description=f"Always {TEST_MESSAGE!r}.")


# ---- the catalogue: every event Serval emits, with what the docs say of it ------------------


class EventSpec(NamedTuple):
    model: type[_Payload]
    when: str  # one line: the change that fires it
    caused_by: str  # the user or API action behind that change
    example: dict[str, Any]  # an example payload (it must validate against ``model``)


_TASK = "t_3f8kq2m9zx7c4v6n1b5r0hjwde"
_IMPORT = "imp_01jd5r9b2c7xk4m8q3v6z0nwta"
_MANAGER = "8c1e5f2a-93b4-4d7e-a6f0-2b9c8d4e1a37"
_ANNOTATOR = "d4a7b2c9-1e6f-4a3b-9c8d-7e5f0a2b6c14"
_WEBHOOK = "wh_01jd5rc4n8m2q7x3v9k6z1bwte"
_REVIEW = "`POST /projects/{project_id}/tasks/{task_id}/review`"


def _status_example(before: str, after: str) -> dict[str, Any]:
    return {"task_id": _TASK, "from": before, "to": after}


def _job_example(job_id: str, kind: str, done: int) -> dict[str, Any]:
    return {"job_id": job_id, "kind": kind, "status": "succeeded", "done": done, "failed": 0}


CATALOGUE: dict[str, EventSpec] = {
    "project.created": EventSpec(
        ProjectCreated, "A project was created.", "`POST /projects`", {"name": "Street scenes"}
    ),
    "task.created": EventSpec(
        TaskCreated,
        "A task was created.",
        "`POST /projects/{project_id}/tasks`, or a manifest or media file uploaded to the project "
        "(`POST /projects/{project_id}/uploads`) and ingested",
        {"task_id": _TASK, "media_type": "image", "import_id": _IMPORT},
    ),
    "task.deleted": EventSpec(
        TaskRef,
        "A task was deleted (with its annotations).",
        "`DELETE /projects/{project_id}/tasks/{task_id}`, or a bulk `delete` "
        "(`POST /projects/{project_id}/bulk`)",
        {"task_id": _TASK},
    ),
    "task.prelabeled": EventSpec(
        TaskStatusChanged,
        "A task's status moved to prelabeled (machine pre-labels applied before labelling).",
        "The task's workflow, once auto-labelling is configured. Not emitted yet: the AutoLabel step passes tasks through until SageMaker auto-labelling lands",
        _status_example("new", "prelabeled"),
    ),
    "task.leased": EventSpec(
        TaskStatusChanged,
        "A task's status moved to leased: an annotator took it to label.",
        "`POST /projects/{project_id}/next`",
        _status_example("queued", "leased"),
    ),
    "annotation.submitted": EventSpec(
        TaskStatusChanged,
        "A task's status moved to submitted: its annotator submitted an annotation.",
        "`POST /projects/{project_id}/tasks/{task_id}/submit`",
        _status_example("leased", "submitted"),
    ),
    "review.approved": EventSpec(
        TaskStatusChanged,
        "A task's status moved to approved.",
        f"A reviewer's approval ({_REVIEW}), or the annotators' consensus when no review is needed",
        _status_example("in_review", "approved"),
    ),
    "review.rejected": EventSpec(
        TaskStatusChanged,
        "A task's status moved to rejected: it goes back to labelling for rework.",
        f"A reviewer's rejection ({_REVIEW})",
        _status_example("in_review", "rejected"),
    ),
    "task.exported": EventSpec(
        TaskStatusChanged,
        "A task's status moved to exported: its approved annotation became its exported record.",
        "The task's workflow (its Export step, after the approval), so in the end "
        f"{_REVIEW} or the annotators' consensus",
        _status_example("approved", "exported"),
    ),
    "task.completed": EventSpec(
        TaskStatusChanged,
        "A task's workflow completed: sent with task.exported, by the same change (its id ends in `.1`).",
        "The same change as task.exported",
        _status_example("approved", "exported"),
    ),
    "import.completed": EventSpec(
        ImportCompleted,
        "An import finished: its status moved to completed or completed_with_errors.",
        "`POST /projects/{project_id}/tasks` (one import per request), or a manifest uploaded to "
        "the project (`POST /projects/{project_id}/uploads`)",
        {
            "import_id": _IMPORT,
            "status": "completed_with_errors",
            "tasks_created": 998,
            "duplicates": 0,
            "errors": 2,
        },
    ),
    "import.failed": EventSpec(
        ImportFailed,
        "An import failed: its status moved to failed (the tasks it created are kept).",
        "A manifest uploaded to the project (`POST /projects/{project_id}/uploads`) that could no "
        "longer be read while it was imported (changed or deleted)",
        {
            "import_id": _IMPORT,
            "status": "failed",
            "tasks_created": 400,
            "duplicates": 0,
            "errors": 1,
            "reason": "the object changed while it was imported",
        },
    ),
    "export.completed": EventSpec(
        JobCompleted,
        "A dataset export job finished (succeeded or failed).",
        "`POST /projects/{project_id}/exports`",
        _job_example("job_01jd5rf0x3k8m2v7q9c4n6bwzt", "dataset_export", 1000),
    ),
    "audit_export.completed": EventSpec(
        JobCompleted,
        "An audit export job finished (succeeded or failed).",
        "`POST /projects/{project_id}/audit/exports`",
        _job_example("job_01jd5rg7m2q9x4k3v8c6n0bwtz", "audit_export", 5230),
    ),
    "bulk.completed": EventSpec(
        JobCompleted,
        "A bulk operation on tasks finished (succeeded or failed).",
        "`POST /projects/{project_id}/bulk`",
        _job_example("job_01jd5rh3k8v2m7q4x9c6n0bwza", "bulk", 250),
    ),
    "member.added": EventSpec(
        MemberAdded,
        "A user became a member of the project (a role change announces nothing).",
        "`POST /projects/{project_id}/members`, and `POST /projects` (its creator joins as manager)",
        {"user_id": _ANNOTATOR, "role": "annotator", "added_by": _MANAGER},
    ),
    "member.removed": EventSpec(
        MemberRemoved,
        "A member was removed from the project.",
        "`DELETE /projects/{project_id}/members/{user_id}`",
        {"user_id": _ANNOTATOR, "role": "annotator", "added_by": None},
    ),
    "webhook.disabled": EventSpec(
        WebhookDisabled,
        "Serval disabled a webhook subscription (for an organisation subscription, project_id is null).",
        "Its endpoint answering 410 Gone, or failing deliveries too many times in a row; "
        "`POST /projects/{project_id}/webhooks/{webhook_id}/resume` (or `/webhooks/{webhook_id}/resume`) "
        "enables it again",
        {
            "webhook_id": _WEBHOOK,
            "scope": "project",
            "url": "https://hooks.example.com/serval",
            "reason": "the endpoint answered 410 Gone",
            "consecutive_failures": 1,
        },
    ),
    "webhook.test": EventSpec(
        WebhookTest,
        "A test delivery to one subscription (never on the event bus).",
        "`POST /projects/{project_id}/webhooks/{webhook_id}/test` (or `/webhooks/{webhook_id}/test`)",
        {"webhook_id": _WEBHOOK, "message": TEST_MESSAGE},
    ),
}

# Event type -> its payload model. Every event Serval emits is listed here.
PAYLOADS: dict[str, type[_Payload]] = {event_type: spec.model for event_type, spec in CATALOGUE.items()}
EVENT_TYPES: frozenset[str] = frozenset(CATALOGUE)


def bus_pattern(*event_types: str) -> str:
    """The EventBridge event pattern (JSON) that matches Serval's events on the bus as they are
    published (source ``SOURCE``, detail-type the event type): those of ``event_types``, or
    every one when none is given."""
    unknown = sorted(set(event_types) - EVENT_TYPES)
    if unknown:
        raise ValueError(f"not event types of the catalogue: {unknown}")
    pattern: dict[str, list[str]] = {"source": [SOURCE]}
    if event_types:
        pattern["detail-type"] = list(event_types)
    return json.dumps(pattern)


def payload(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked against the type's payload model, as the event carries it (raises on a mismatch)."""
    return PAYLOADS[event_type].model_validate(data).model_dump(by_alias=True, mode="json")


def _event(
    event_id: str, event_type: str, at: str, project_id: str | None, data: dict[str, Any]
) -> DomainEvent:
    return DomainEvent(
        id=event_id, type=event_type, occurred_at=at, project_id=project_id, data=payload(event_type, data)
    )


# ---- from a tasks-table change ------------------------------------------------------------------

Image = dict[str, Any]
Announced = list[tuple[str, dict[str, Any]]]  # (event type, data), in the order they are emitted


def _str(image: Image, name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _num(image: Image, name: str) -> int:
    value = image.get(name)
    return int(value["N"]) if isinstance(value, dict) and "N" in value else 0


def _status_moved(old: Image, new: Image) -> str | None:
    """The status ``new`` entered, or None when the status did not change."""
    after = _str(new, "status")
    return after if _str(old, "status") != after else None


def _task(kind: str, old: Image, new: Image) -> Announced:
    image = new or old
    base = {"task_id": _str(image, "task_id")}
    if kind == "INSERT":
        return [
            (
                "task.created",
                base | {"media_type": _str(new, "media_type"), "import_id": _str(new, "import_id")},
            )
        ]
    if kind == "REMOVE":
        return [("task.deleted", base)]
    after = _status_moved(old, new)
    moved = base | {"from": _str(old, "status"), "to": after}
    return [(event_type, moved) for event_type in STATUS_EVENTS.get(after or "", ())]


def _import(kind: str, old: Image, new: Image) -> Announced:
    after = _status_moved(old, new) if kind == "MODIFY" else None
    if after not in IMPORT_COMPLETED and after != IMPORT_FAILED:
        return []
    counts: dict[str, Any] = {
        "import_id": _str(new, "import_id"),
        "status": after,
        "tasks_created": _num(new, "tasks_created"),
        "duplicates": _num(new, "duplicates"),
        "errors": _num(new, "errors"),
    }
    if after == IMPORT_FAILED:
        return [("import.failed", counts | {"reason": _str(new, "reason")})]
    return [("import.completed", counts)]


def _job(kind: str, old: Image, new: Image) -> Announced:
    job_kind = _str(new, "kind")
    after = _status_moved(old, new) if kind == "MODIFY" else None
    if after not in JOB_FINISHED or job_kind not in JOB_EVENTS:
        return []
    outcome: dict[str, Any] = {
        "job_id": _str(new, "job_id"),
        "kind": job_kind,
        "status": after,
        "done": _num(new, "done"),
        "failed": _num(new, "failed"),
    }
    return [(JOB_EVENTS[job_kind], outcome)]


def _project(kind: str, old: Image, new: Image) -> Announced:
    return [("project.created", {"name": _str(new, "name")})] if kind == "INSERT" else []


def _member(kind: str, old: Image, new: Image) -> Announced:
    if kind == "INSERT":
        return [
            (
                "member.added",
                {
                    "user_id": _str(new, "user_id"),
                    "role": _str(new, "role"),
                    "added_by": _str(new, "added_by"),
                },
            )
        ]
    if kind == "REMOVE":
        return [
            ("member.removed", {"user_id": _str(old, "user_id"), "role": _str(old, "role"), "added_by": None})
        ]
    return []  # a role change announces nothing


def _endpoint(url: str) -> str:
    """A URL without its query (or credentials and fragment, which a subscription never holds)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _webhook(kind: str, old: Image, new: Image) -> Announced:
    """Only the attributes named here leave a webhook item: it also holds its secrets."""
    if kind != "MODIFY" or _status_moved(old, new) != WEBHOOK_DISABLED:
        return []
    disabled = {
        "webhook_id": _str(new, "webhook_id"),
        "scope": _str(new, "scope"),
        "url": _endpoint(_str(new, "url") or ""),
        "reason": _str(new, "disabled_reason"),
        "consecutive_failures": _num(new, "consecutive_failures"),
    }
    return [("webhook.disabled", disabled)]


# Entity -> what its changes announce. Any other entity (counters, tag links...) announces nothing.
_ENTITIES: dict[str, Callable[[str, Image, Image], Announced]] = {
    "task": _task,
    "import": _import,
    "job": _job,
    "project": _project,
    "member": _member,
}


def event_id_of(record_id: str, n: int) -> str:
    """The id of a change's n-th event (from 0): the first keeps the stream record's id."""
    return record_id if n == 0 else f"{record_id}.{n}"


def from_change(event_id: str, kind: str, old: Image, new: Image, at: str) -> list[DomainEvent]:
    """The events one tasks-table change announces, in order (none for counters, tag links...).

    Each event's data is checked against its payload model: a mismatch raises.
    """
    image = new or old
    entity = _str(image, "entity")
    project_id = _str(image, "project_id")
    if entity == "webhook":
        scope = _str(image, "scope")
        if scope == "org":
            project_id = None
        elif not project_id:
            return []
        announced = _webhook(kind, old, new)
    elif not project_id or entity not in _ENTITIES:
        return []
    else:
        announced = _ENTITIES[entity](kind, old, new)
    return [
        _event(event_id_of(event_id, n), event_type, at, project_id, data)
        for n, (event_type, data) in enumerate(announced)
    ]


def test_event(webhook_id: str, project_id: str | None, at: str, event_id: str) -> DomainEvent:
    """The ``webhook.test`` event the subscriptions API sends to one subscription (never on the bus)."""
    return _event(
        event_id, "webhook.test", at, project_id, {"webhook_id": webhook_id, "message": TEST_MESSAGE}
    )


test_event.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by one


def validate_payload(event: DomainEvent) -> None:
    """Check an event's data against its documented payload model (raises on a mismatch)."""
    PAYLOADS[event.type].model_validate(event.data)


# ---- docs/events.md -----------------------------------------------------------------------------

EXAMPLE_PROJECT = "p_01jd5r8k3m9qv2x7c4n6t0wbza"
EXAMPLE_AT = "2025-01-15T09:30:12.345Z"
EXAMPLE_RECORD_ID = "4b1e6ac2d27f0c3e8f1a95b6d3c70e21"  # a stream record's id
_EXAMPLE_IDS = {
    "task.completed": event_id_of(EXAMPLE_RECORD_ID, 1),
    "webhook.test": "evt_test_01jd5rk2m7q3x8v4c9n6z0bwta",
}


def example_event(event_type: str) -> DomainEvent:
    """The catalogue's example of an event type, as a full envelope (its data validated)."""
    event_id = _EXAMPLE_IDS.get(event_type, EXAMPLE_RECORD_ID)
    return _event(event_id, event_type, EXAMPLE_AT, EXAMPLE_PROJECT, CATALOGUE[event_type].example)


_INTRO = """\
# Domain events

Serval announces what happens in its projects as events: one JSON envelope per event (below),
whose `data` is the payload of its `type`. Payloads are lean: ids and counts, never media,
annotation bodies or secrets.

## How they are delivered

- **Event bus.** Every event except `webhook.test` is published on the EventBridge bus
  `serval-<env>-events` (source `serval`, detail-type = the event type, detail = the envelope).
  Events are built from the tasks table's stream, so a committed change always yields its
  events, at least once.
- **Webhooks.** A subscription (a project's, or the organisation's, which receives every
  project's events) gets each event it subscribes to as an HTTP `POST` whose body is the
  envelope, signed as [Standard Webhooks](https://www.standardwebhooks.com/) specifies:
  - `webhook-id`: the event's `id`;
  - `webhook-timestamp`: when the delivery was signed, in Unix seconds;
  - `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`
    with the secret's key (the base64 after `whsec_`); during a secret rotation two signatures,
    space-separated, one per secret.

  Verify the signature over the raw body, and reject timestamps far from your clock.
- **At least once.** An event may arrive more than once (retries, replays). Its `id` is the
  same on every delivery: deduplicate on it (on a webhook, the `webhook-id` header).
- **Order is not guaranteed.** Events may arrive in any order; order them by `occurred_at`.
- **One change, several events.** A change may announce more than one event (a task moving to
  exported sends `task.exported` and `task.completed`): the first keeps the change's id, the
  n-th after it gets `<id>.<n>`.

Generated from `layers/serval/domain/events.py` by `make events-doc`; a test keeps it current.
"""


def schema_markdown() -> str:
    """docs/events.md: how events are delivered, the envelope, and each event type's when,
    cause, example and payload schema (``make events-doc``)."""

    def block(value: dict[str, Any], sort_keys: bool = True) -> str:
        return "```json\n" + json.dumps(value, indent=2, sort_keys=sort_keys) + "\n```\n"

    parts = [
        _INTRO,
        "## Envelope\n",
        "The EventBridge `detail`, and a webhook delivery's body.\n",
        block(DomainEvent.model_json_schema()),
        "## Event types\n",
        "| type | when it fires |\n|---|---|\n"
        + "".join(f"| [`{t}`](#{t.replace('.', '')}) | {spec.when} |\n" for t, spec in CATALOGUE.items()),
    ]
    for event_type, spec in CATALOGUE.items():
        parts += [
            f"## `{event_type}`\n",
            f"**When it fires:** {spec.when}\n",
            f"**Caused by:** {spec.caused_by}.\n",
            "Example:\n",
            block(example_event(event_type).model_dump(mode="json"), sort_keys=False),
            "Payload (`data`) schema:\n",
            block(spec.model.model_json_schema(by_alias=True)),
        ]
    return "\n".join(parts)
