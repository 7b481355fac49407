"""The user directory: Serval's own record of each Cognito user (groups, enabled), with audit.

Cognito stays the identity provider; the directory is what the API checks on every
request (cheaply, cached) and what user listings read, so neither hits Cognito's
low admin-API quotas.
"""

from __future__ import annotations

from typing import Any

from serval import keys
from serval.adapters import audit, dynamo
from serval.domain.access import User
from serval.domain.actor import Actor
from serval.domain.permissions import GlobalRole
from serval.errors import AlreadyExists, Conflict, NotFound


def _to_user(item: Any) -> User:
    return User(
        user_id=item.user_id,
        username=item.username,
        email=item.email,
        groups=[GlobalRole(g) for g in item.groups or [] if g in GlobalRole._value2member_map_],
        enabled=bool(item.enabled),
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _item(user: User, version: int) -> Any:
    return dynamo.tasks().UserItem(
        PK=keys.user_pk(user.user_id),
        SK=keys.USER_SK,
        GSI1PK=keys.USERS_GSI1PK,
        GSI1SK=f"{user.email}#{user.user_id}",
        user_id=user.user_id,
        username=user.username,
        email=user.email,
        groups=[g.value for g in user.groups],
        enabled=user.enabled,
        created_by=user.created_by,
        created_at=user.created_at,
        updated_at=user.updated_at,
        version=version,
    )


def _audit_view(user: User) -> dict[str, Any]:
    return user.model_dump(mode="json")


def get_versioned(user_id: str, consistent: bool = False) -> tuple[User, int] | None:
    m = dynamo.tasks()
    try:
        item = m.UserItem.get(keys.user_pk(user_id), keys.USER_SK, consistent_read=consistent)
    except m.UserItem.DoesNotExist:
        return None
    return _to_user(item), int(item.version)


def get(user_id: str) -> User:
    found = get_versioned(user_id)
    if found is None:
        raise NotFound(f"user {user_id} not found", details={"user_id": user_id})
    return found[0]


def create(user: User, actor: Actor) -> None:
    tx = dynamo.Tx()
    tx.put(_item(user, 1), condition="attribute_not_exists(PK)")
    audit.record(tx, actor, "user.create", "user", user.user_id, None, after=_audit_view(user))
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise AlreadyExists(f"user {user.user_id} already exists", details={"user_id": user.user_id}) from exc


def replace(before: User, after: User, version: int, actor: Actor, action: str) -> None:
    tx = dynamo.Tx()
    tx.put(
        _item(after, version + 1),
        condition="attribute_exists(PK) AND #v = :v",
        names={"#v": "version"},
        values={":v": version},
    )
    audit.record(
        tx, actor, action, "user", after.user_id, None, before=_audit_view(before), after=_audit_view(after)
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        raise Conflict(
            "the user changed meanwhile; read it again", details={"user_id": after.user_id}
        ) from exc


def list_page(
    limit: int, cursor: str | None, email_prefix: str | None = None
) -> tuple[list[User], str | None]:
    """Users by email (GSI1), optionally those whose email starts with ``email_prefix``."""
    m = dynamo.tasks()
    condition = m.Item.GSI1SK.startswith(email_prefix.lower()) if email_prefix else None
    results = m.Item.by_status.query(
        keys.USERS_GSI1PK,
        condition,
        limit=limit,
        page_size=limit,
        last_evaluated_key=dynamo.decode_cursor(
            cursor, keys.GSI1PK, keys.USERS_GSI1PK, email_prefix.lower() if email_prefix else None
        ),
    )
    return [_to_user(i) for i in results], dynamo.encode_cursor(results.last_evaluated_key)


def get_many(user_ids: list[str]) -> dict[str, User]:
    """Directory entries by id (BatchGetItem); unknown ids are left out."""
    m = dynamo.tasks()
    wanted = list(dict.fromkeys(user_ids))
    found: dict[str, User] = {}
    for chunk in dynamo.chunks(wanted, 100):
        for item in m.UserItem.batch_get([(keys.user_pk(u), keys.USER_SK) for u in chunk]):
            found[item.user_id] = _to_user(item)
    return found
