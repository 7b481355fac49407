"""Project membership: who belongs to a project, with which role.

Rules beyond the permission table:

* nobody changes their own membership role (no self-grant; an admin needs none);
* a member's role may not rank above their global role (the ceiling): a vendor's
  ``annotator`` account cannot be made a project ``manager``;
* a project always keeps at least one manager;
* removing a member, or giving them a role that cannot label, releases the tasks reserved for
  them in the project (:func:`serval.logic.queue.release_reservations`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from serval.adapters import members, projects, users
from serval.domain.access import Member, MemberAdd, MemberUpdate, MyProject
from serval.domain.actor import Actor
from serval.domain.permissions import (
    PROJECT_ACTIONS,
    Action,
    ProjectRole,
    ceiling,
    effective_project_role,
    is_admin,
    project_actions,
)
from serval.errors import Conflict, LastManager, RoleAboveCeiling, SelfGrant
from serval.logic import queue
from serval.logic import users as user_logic

T = TypeVar("T")


def _not_self(user_id: str, actor: Actor) -> None:
    if user_id == actor.user_id and not is_admin(actor):
        raise SelfGrant("you may not change your own project role", details={"user_id": user_id})


def _within_ceiling(user_id: str, role: ProjectRole) -> None:
    user = user_logic.get(user_id)
    cap = ceiling([g.value for g in user.groups])
    if role.rank > cap.rank:
        raise RoleAboveCeiling(
            f"the user's global role allows at most the project role {cap.value}",
            details={"user_id": user_id, "role": role.value, "ceiling": cap.value},
        )


def _with_emails(page: list[Member]) -> list[Member]:
    directory = users.get_many([m.user_id for m in page])
    return [
        m.model_copy(update={"email": directory[m.user_id].email}) if m.user_id in directory else m
        for m in page
    ]


def add(project_id: str, request: MemberAdd, actor: Actor) -> Member:
    _not_self(request.user_id, actor)
    _within_ceiling(request.user_id, request.role)
    member = members.new(project_id, request.user_id, request.role, actor)
    members.add(member, actor)
    return _with_emails([member])[0]


def get(project_id: str, user_id: str) -> Member:
    return _with_emails([members.get(project_id, user_id)])[0]


def list_page(project_id: str, limit: int, cursor: str | None) -> tuple[list[Member], str | None]:
    page, next_cursor = members.list_for_project(project_id, limit, cursor)
    return _with_emails(page), next_cursor


MANAGER_ATTEMPTS = 3  # re-reads when the manager a change relied on went meanwhile


def _keeper(before: Member, role: ProjectRole | None) -> str | None:
    """Another manager that keeps the project managed once ``before`` takes ``role`` (None:
    leaves); None when ``before`` stays a manager or was none; 409 ``last_manager`` when there is none."""
    if before.role is not ProjectRole.MANAGER or role is ProjectRole.MANAGER:
        return None
    others = [m for m in members.managers(before.project_id) if m != before.user_id]
    if not others:
        raise LastManager(
            "a project keeps at least one manager; add another manager first",
            details={"project_id": before.project_id, "user_id": before.user_id},
        )
    return others[0]


def _keeping_a_manager(
    project_id: str, user_id: str, role: ProjectRole | None, change: Callable[[Member, str | None], T]
) -> T:
    """Run ``change`` (the member takes ``role``; None: leaves) on the member's current state,
    conditional on another manager staying one: two managers removing or demoting each other at
    once never leave the project without one."""
    for _ in range(MANAGER_ATTEMPTS):
        before = members.get(project_id, user_id)
        try:
            return change(before, _keeper(before, role))
        except members.KeeperGone:
            continue
    raise Conflict(
        "the project's managers keep changing; read them again",
        details={"project_id": project_id, "user_id": user_id},
    )


def update(project_id: str, user_id: str, request: MemberUpdate, actor: Actor) -> Member:
    _not_self(user_id, actor)

    def change(before: Member, keeper: str | None) -> Member:
        if before.role is request.role:
            return before
        _within_ceiling(user_id, request.role)
        return members.change_role(before, request.role, actor, keeper)

    after = _keeping_a_manager(project_id, user_id, request.role, change)
    if request.role not in PROJECT_ACTIONS[Action.TASK_LEASE]:
        queue.release_reservations(user_id, actor, project_id)
    return _with_emails([after])[0]


def remove(project_id: str, user_id: str, actor: Actor) -> None:
    _keeping_a_manager(
        project_id, user_id, None, lambda before, keeper: members.remove(before, actor, keeper)
    )
    queue.release_reservations(user_id, actor, project_id)


def my_projects(actor: Actor, limit: int, cursor: str | None) -> tuple[list[MyProject], str | None]:
    """The projects the caller belongs to, with the role they act with in each."""
    page, next_cursor = members.list_for_user(actor.user_id, limit, cursor)
    found = {p.project_id: p for p in projects.get_many([m.project_id for m in page])}
    mine = [
        MyProject(
            project_id=m.project_id,
            name=found[m.project_id].name,
            status=found[m.project_id].status.value,
            role=m.role,
            effective_role=effective_project_role(actor.groups, m.role),
            actions=[a.value for a in project_actions(actor, m.role)],
        )
        for m in page
        if m.project_id in found
    ]
    return mine, next_cursor
