"""User management: invitations through Cognito, global groups, disable and enable.

Cognito and DynamoDB cannot share a transaction, so each use case changes Cognito
first and then the directory (with its audit record) in one transaction; if that
fails, the Cognito change is undone before the error is raised.

Disabling a user, or leaving them no group that may label, releases the tasks reserved for
them in every project (:func:`serval.logic.queue.release_reservations`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from serval.adapters import cognito, users
from serval.domain.access import GroupsUpdate, User, UserInvite
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.domain.permissions import PROJECT_ACTIONS, Action, GlobalRole, ceiling
from serval.errors import NotFound, SelfGrant
from serval.logic import access, queue

T = TypeVar("T")
_SUB = re.compile(r"[A-Za-z0-9-]{1,64}")  # whole ids only: fullmatch


def _undo_on_failure(change: Callable[[], T], undo: Callable[[], object]) -> T:
    try:
        return change()
    except BaseException:
        undo()
        raise


def invite(request: UserInvite, actor: Actor) -> User:
    password = request.temporary_password.get_secret_value() if request.temporary_password else None
    created = cognito.create_user(request.email, password, request.send_invite)
    now = utcnow()
    user = User(
        user_id=created["sub"],
        username=created["username"],
        email=request.email,
        groups=request.groups,
        enabled=True,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )

    def record() -> None:
        cognito.set_groups(user.username, [g.value for g in request.groups], [])
        users.create(user, actor)

    _undo_on_failure(record, lambda: cognito.delete_user(user.username))
    return user


def get(user_id: str) -> User:
    """A directory user; a user created outside Serval is adopted into the directory first."""
    found = users.get_versioned(user_id)
    return found[0] if found else adopt(user_id)


def adopt(user_id: str) -> User:
    """Record in the directory a Cognito user created outside Serval (e.g. in the console)."""
    outside = cognito.find_by_sub(user_id) if _SUB.fullmatch(user_id) else None
    if outside is None:
        raise NotFound(f"user {user_id} not found", details={"user_id": user_id})
    now = utcnow()
    user = User(
        user_id=user_id,
        username=outside["username"],
        email=outside["email"],
        groups=[
            GlobalRole(g)
            for g in cognito.groups_of(outside["username"])
            if g in GlobalRole._value2member_map_
        ],
        enabled=outside["enabled"],
        created_by="system:adopted",
        created_at=now,
        updated_at=now,
    )
    users.create(user, Actor.system("directory"))
    return user


def list_page(limit: int, cursor: str | None, email_prefix: str | None) -> tuple[list[User], str | None]:
    return users.list_page(limit, cursor, email_prefix)


def _versioned(user_id: str) -> tuple[User, int]:
    get(user_id)
    found = users.get_versioned(user_id, consistent=True)
    if found is None:
        raise NotFound(f"user {user_id} not found", details={"user_id": user_id})
    return found


def _not_self(user_id: str, actor: Actor, what: str) -> None:
    if user_id == actor.user_id:
        raise SelfGrant(f"you may not change your own {what}", details={"user_id": user_id})


def set_groups(user_id: str, request: GroupsUpdate, actor: Actor) -> User:
    _not_self(user_id, actor, "groups")
    before, version = _versioned(user_id)
    wanted = {g.value for g in request.groups}
    held = {g.value for g in before.groups}
    add, remove = sorted(wanted - held), sorted(held - wanted)
    if not add and not remove:
        return before
    after = before.model_copy(update={"groups": request.groups, "updated_at": utcnow()})
    cognito.set_groups(before.username, add, remove)
    _undo_on_failure(
        lambda: users.replace(before, after, version, actor, "user.groups"),
        lambda: cognito.set_groups(before.username, remove, add),
    )
    access.forget(user_id)
    if ceiling(list(wanted)) not in PROJECT_ACTIONS[Action.TASK_LEASE]:
        queue.release_reservations(user_id, actor)
    return after


def set_enabled(user_id: str, enabled: bool, actor: Actor) -> User:
    _not_self(user_id, actor, "account status")
    before, version = _versioned(user_id)
    if before.enabled == enabled:
        return before
    after = before.model_copy(update={"enabled": enabled, "updated_at": utcnow()})
    cognito.set_enabled(before.username, enabled)
    _undo_on_failure(
        lambda: users.replace(before, after, version, actor, "user.enable" if enabled else "user.disable"),
        lambda: cognito.set_enabled(before.username, before.enabled),
    )
    access.forget(user_id)
    if not enabled:
        queue.release_reservations(user_id, actor)
    return after
