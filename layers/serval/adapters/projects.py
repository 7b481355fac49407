"""Project items: create, read, list, update with optimistic locking."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import audit, dynamo, mapping, members
from serval.domain.access import Member
from serval.domain.actor import Actor
from serval.domain.models import Project
from serval.errors import AlreadyExists, Conflict, project_not_found


def create(project: Project, actor: Actor, creator: Member | None = None) -> None:
    """Create the project, with its creator's membership in the same transaction."""
    m = dynamo.tasks()
    tx = dynamo.Tx()
    tx.put(m.ProjectItem(**mapping.project_to_attrs(project)), condition="attribute_not_exists(PK)")
    if creator is not None:
        members.put_new(tx, creator)
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
        raise project_not_found(project_id) from None


def get(project_id: str) -> Project:
    return mapping.project_from_item(get_item(project_id))


def get_versioned(project_id: str) -> tuple[Project, int]:
    """The project and its item version, for an optimistic-locking update."""
    item = get_item(project_id)
    return mapping.project_from_item(item), int(item.version)


def get_many(project_ids: list[str]) -> list[Project]:
    """Projects by id (BatchGetItem) in the order asked; unknown ids are left out."""
    m = dynamo.tasks()
    found: dict[str, Project] = {}
    for chunk in dynamo.chunks(list(dict.fromkeys(project_ids)), 100):
        for item in m.ProjectItem.batch_get([(keys.project_pk(p), keys.PROJECT_SK) for p in chunk]):
            found[item.project_id] = mapping.project_from_item(item)
    return [found[p] for p in project_ids if p in found]


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
    """Write ``after`` over ``before`` if nobody changed the project meanwhile.

    The audit record holds the fields that changed (their values before and after), not the
    whole project twice: a project with a large label configuration still fits one record.
    """
    m = dynamo.tasks()
    attrs = mapping.project_to_attrs(after) | {"version": expected_version + 1}
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    changed = [k for k in new if old.get(k) != new[k]]
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
        before={k: old[k] for k in changed},
        after={k: new[k] for k in changed},
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict("the project was changed by someone else; reload and retry") from exc
