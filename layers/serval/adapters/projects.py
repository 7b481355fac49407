"""Project items: create, read, list, update with optimistic locking."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import audit, dynamo, mapping
from serval.domain.actor import Actor
from serval.domain.models import Project
from serval.errors import AlreadyExists, Conflict, NotFound


def create(project: Project, actor: Actor) -> None:
    m = dynamo.tasks()
    tx = dynamo.Tx()
    tx.put(m.ProjectItem(**mapping.project_to_attrs(project)), condition="attribute_not_exists(PK)")
    audit.record(
        tx,
        actor,
        "project.create",
        "project",
        project.project_id,
        project.project_id,
        after=project.model_dump(mode="json"),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise AlreadyExists(f"project {project.project_id} already exists") from exc


def get_item(project_id: str) -> Any:
    m = dynamo.tasks()
    try:
        return m.ProjectItem.get(keys.project_pk(project_id), keys.PROJECT_SK)
    except m.ProjectItem.DoesNotExist:
        raise NotFound(f"project {project_id} not found", details={"project_id": project_id}) from None


def get(project_id: str) -> Project:
    return mapping.project_from_item(get_item(project_id))


def get_versioned(project_id: str) -> tuple[Project, int]:
    """The project and its item version, for an optimistic-locking update."""
    item = get_item(project_id)
    return mapping.project_from_item(item), int(item.version)


def list_page(limit: int, cursor: str | None) -> tuple[list[Project], str | None]:
    """Newest first, from GSI1 (one partition holds every project's listing entry)."""
    m = dynamo.tasks()
    start = dynamo.decode_cursor(cursor, keys.GSI1PK, keys.PROJECTS_GSI1PK)
    results = m.Item.by_status.query(
        keys.PROJECTS_GSI1PK, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
    )
    projects = [mapping.project_from_item(i) for i in results]
    return projects, dynamo.encode_cursor(results.last_evaluated_key)


def replace(before: Project, after: Project, expected_version: int, actor: Actor, action: str) -> None:
    """Write ``after`` over ``before`` if nobody changed the project meanwhile."""
    m = dynamo.tasks()
    attrs = mapping.project_to_attrs(after) | {"version": expected_version + 1}
    tx = dynamo.Tx()
    tx.put(
        m.ProjectItem(**attrs),
        condition="attribute_exists(PK) AND #v = :v",
        names={"#v": "version"},
        values={":v": expected_version},
    )
    audit.record(
        tx,
        actor,
        action,
        "project",
        after.project_id,
        after.project_id,
        before=before.model_dump(mode="json"),
        after=after.model_dump(mode="json"),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("the project was changed by someone else; reload and retry") from exc
