"""Project membership items: one per (project, user), listed by project and by user (GSI1)."""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import audit, dynamo
from serval.domain.access import Member
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.domain.permissions import ProjectRole
from serval.errors import AlreadyExists, Conflict, NotFound


def _to_member(item: Any) -> Member:
    return Member(
        project_id=item.project_id,
        user_id=item.user_id,
        role=ProjectRole(item.role),
        added_by=item.added_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _item(member: Member) -> Any:
    return dynamo.tasks().MemberItem(
        PK=keys.project_pk(member.project_id),
        SK=keys.member_sk(member.user_id),
        GSI1PK=keys.user_projects_gsi1pk(member.user_id),
        GSI1SK=member.project_id,
        project_id=member.project_id,
        user_id=member.user_id,
        role=member.role.value,
        added_by=member.added_by,
        created_at=member.created_at,
        updated_at=member.updated_at,
    )


def new(project_id: str, user_id: str, role: ProjectRole, actor: Actor) -> Member:
    now = utcnow()
    return Member(
        project_id=project_id,
        user_id=user_id,
        role=role,
        added_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )


def put_new(tx: dynamo.Tx, member: Member) -> None:
    """Add the membership to ``tx``; the transaction fails if the user is already a member."""
    tx.put(_item(member), condition="attribute_not_exists(PK)")


def role_of(project_id: str, user_id: str) -> ProjectRole | None:
    """The user's membership role in the project (strongly consistent: changes apply at once)."""
    m = dynamo.tasks()
    try:
        item = m.MemberItem.get(keys.project_pk(project_id), keys.member_sk(user_id), consistent_read=True)
    except m.MemberItem.DoesNotExist:
        return None
    return ProjectRole(item.role)


def get(project_id: str, user_id: str) -> Member:
    m = dynamo.tasks()
    try:
        return _to_member(m.MemberItem.get(keys.project_pk(project_id), keys.member_sk(user_id)))
    except m.MemberItem.DoesNotExist:
        raise NotFound(
            f"user {user_id} is not a member of project {project_id}",
            details={"project_id": project_id, "user_id": user_id},
        ) from None


def add(member: Member, actor: Actor) -> None:
    tx = dynamo.Tx()
    put_new(tx, member)
    audit.record(
        tx,
        actor,
        "member.add",
        "member",
        f"{member.project_id}/{member.user_id}",
        member.project_id,
        after=member.model_dump(mode="json", exclude={"email"}),
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise AlreadyExists(
            f"user {member.user_id} is already a member of project {member.project_id}",
            details={"project_id": member.project_id, "user_id": member.user_id},
        ) from exc


KEEPER_CHECK = 1  # the keeper's condition check follows the change itself


class KeeperGone(Exception):
    """The manager a change relied on to keep the project managed is no longer one."""


def _keeper_still_manages(tx: dynamo.Tx, project_id: str, keeper: str | None) -> None:
    """Make ``tx`` conditional on ``keeper`` still being a manager of the project: two changes
    that each rely on the other's target cannot both commit, so a project keeps a manager."""
    if keeper is None:
        return
    tx.check(
        dynamo.tasks().table_name,
        dynamo.item_key(keys.project_pk(project_id), keys.member_sk(keeper)),
        "#role = :manager",
        names={"#role": "role"},
        values={":manager": ProjectRole.MANAGER.value},
    )


def change_role(before: Member, role: ProjectRole, actor: Actor, keeper: str | None = None) -> Member:
    """Change a member's role; with ``keeper``, only while that user is still a manager."""
    after = before.model_copy(update={"role": role, "updated_at": utcnow()})
    tx = dynamo.Tx()
    tx.put(
        _item(after),
        condition="attribute_exists(PK) AND #role = :role",
        names={"#role": "role"},
        values={":role": before.role.value},
    )
    _keeper_still_manages(tx, before.project_id, keeper)
    audit.record(
        tx,
        actor,
        "member.update",
        "member",
        f"{before.project_id}/{before.user_id}",
        before.project_id,
        before=before.model_dump(mode="json", exclude={"email"}),
        after=after.model_dump(mode="json", exclude={"email"}),
    )
    _commit_unchanged(tx, before)
    return after


def remove(before: Member, actor: Actor, keeper: str | None = None) -> None:
    """Remove a membership; with ``keeper``, only while that user is still a manager."""
    tx = dynamo.Tx()
    tx.delete(
        dynamo.tasks().table_name,
        dynamo.item_key(keys.project_pk(before.project_id), keys.member_sk(before.user_id)),
        condition="#role = :role",
        names={"#role": "role"},
        values={":role": before.role.value},
    )
    _keeper_still_manages(tx, before.project_id, keeper)
    audit.record(
        tx,
        actor,
        "member.remove",
        "member",
        f"{before.project_id}/{before.user_id}",
        before.project_id,
        before=before.model_dump(mode="json", exclude={"email"}),
    )
    _commit_unchanged(tx, before)


def _commit_unchanged(tx: dynamo.Tx, before: Member) -> None:
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if KEEPER_CHECK in exc.failed:
            raise KeeperGone(f"project {before.project_id} lost the manager it relied on") from exc
        raise Conflict(
            "the membership changed meanwhile; read it again",
            details={"project_id": before.project_id, "user_id": before.user_id},
        ) from exc


def list_for_project(project_id: str, limit: int, cursor: str | None) -> tuple[list[Member], str | None]:
    m = dynamo.tasks()
    pk = keys.project_pk(project_id)
    results = m.MemberItem.query(
        pk,
        m.MemberItem.SK.startswith(keys.MEMBER_SK_PREFIX),
        limit=limit,
        page_size=limit,
        last_evaluated_key=dynamo.decode_cursor(cursor, keys.PK, pk, keys.MEMBER_SK_PREFIX),
    )
    return [_to_member(i) for i in results], dynamo.encode_cursor(results.last_evaluated_key)


def managers(project_id: str) -> list[str]:
    """The user ids of the project's managers (a project has few members; read them all)."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = list_for_project(project_id, 100, cursor)
        found += [m.user_id for m in page if m.role is ProjectRole.MANAGER]
        if cursor is None:
            return found


def list_for_user(user_id: str, limit: int, cursor: str | None) -> tuple[list[Member], str | None]:
    m = dynamo.tasks()
    pk = keys.user_projects_gsi1pk(user_id)
    results = m.Item.by_status.query(  # newest project first: project ids sort by creation time
        pk,
        scan_index_forward=False,
        limit=limit,
        page_size=limit,
        last_evaluated_key=dynamo.decode_cursor(cursor, keys.GSI1PK, pk),
    )
    return [_to_member(i) for i in results], dynamo.encode_cursor(results.last_evaluated_key)
