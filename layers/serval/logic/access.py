"""Authentication's last mile and authorization: who the caller is now, and what they may do here.

API Gateway's Cognito authorizer has verified the token's signature, issuer, audience
and expiry. Two things a token cannot know are checked here, on every request:

* the user may have been **disabled** since the token was issued (401 ``user_disabled``);
* their **global groups** may have changed: the directory's groups replace the token's.

Both come from the user directory item, cached in-process for ``AUTH_CACHE_SECONDS``
so the check costs one eventually consistent GetItem per user per container and window.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from serval.adapters import members, users
from serval.domain.access import ProjectAccess
from serval.domain.actor import Actor
from serval.domain.permissions import Action, Decision, decide, is_admin, is_project_action
from serval.errors import Forbidden, UserDisabled, project_not_found
from serval.settings import settings


@dataclass(frozen=True)
class _Entry:
    expires: float
    known: bool
    enabled: bool
    groups: tuple[str, ...]


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def _directory_entry(user_id: str) -> _Entry:
    now = time.monotonic()
    with _lock:
        entry = _cache.get(user_id)
    if entry is not None and entry.expires > now:
        return entry
    found = users.get_versioned(user_id)
    ttl = settings().AUTH_CACHE_SECONDS
    if found is None:
        entry = _Entry(now + ttl, known=False, enabled=True, groups=())
    else:
        user = found[0]
        entry = _Entry(
            now + ttl, known=True, enabled=user.enabled, groups=tuple(g.value for g in user.groups)
        )
    with _lock:
        _cache[user_id] = entry
    return entry


def forget(user_id: str) -> None:
    """Drop a user's cached entry (after changing them, so this container sees it at once)."""
    with _lock:
        _cache.pop(user_id, None)


def authenticate(caller: Actor) -> Actor:
    """The caller as the directory knows them now; refuses a disabled user.

    A user created outside Serval (not in the directory) keeps the groups of their token.
    """
    entry = _directory_entry(caller.user_id)
    if not entry.enabled:
        raise UserDisabled("this user has been disabled", details={"user_id": caller.user_id})
    if entry.known and entry.groups != caller.groups:
        return caller.model_copy(update={"groups": entry.groups})
    return caller


def authorize(caller: Actor, action: Action, project_id: str | None) -> tuple[Actor, ProjectAccess | None]:
    """Decide ``action`` for ``caller``; project actions need the route's project id.

    Returns the caller (carrying their project role, for the audit trail) and their access
    to the project. A project the caller may not see is reported exactly like a missing one.
    """
    if not is_project_action(action):
        _require(decide(caller, action), action, caller.role)
        return caller, None
    if project_id is None:
        raise RuntimeError(f"project action {action} on a route without a project id")
    member_role = members.role_of(project_id, caller.user_id)
    decision = decide(caller, action, member_role)
    if decision is Decision.HIDE:
        raise project_not_found(project_id)
    _require(decision, action, member_role.value if member_role else caller.role)
    scoped = caller.model_copy(update={"project_role": member_role.value if member_role else None})
    return scoped, ProjectAccess(project_id=project_id, member_role=member_role, admin=is_admin(caller))


def _require(decision: Decision, action: Action, role: str) -> None:
    if decision is not Decision.ALLOW:
        raise Forbidden(
            f"your role ({role}) may not {action.value}", details={"action": action.value, "role": role}
        )
