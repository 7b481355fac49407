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
from serval.errors import Conflict, SelfGrant, ValidationFailed
from serval.logic import queue
from serval.logic import users as user_logic


def _not_self(user_id: str, actor: Actor) -> None:
    if user_id == actor.user_id and not is_admin(actor):
        raise SelfGrant("you may not change your own project role", details={"user_id": user_id})


def _within_ceiling(user_id: str, role: ProjectRole) -> None:
    user = user_logic.get(user_id)
    cap = ceiling([g.value for g in user.groups])
    if role.rank > cap.rank:
        raise ValidationFailed(
            f"the user's global role allows at most the project role {cap.value}",
            details={
                "user_id": user_id,
                "role": role.value,
                "ceiling": cap.value,
                "code": "role_above_ceiling",
            },
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


def _keeps_a_manager(before: Member) -> None:
    if before.role is ProjectRole.MANAGER and members.managers(before.project_id) == [before.user_id]:
        raise Conflict(
            "a project keeps at least one manager; add another manager first",
            details={"project_id": before.project_id, "user_id": before.user_id, "code": "last_manager"},
        )


def update(project_id: str, user_id: str, request: MemberUpdate, actor: Actor) -> Member:
    _not_self(user_id, actor)
    before = members.get(project_id, user_id)
    if before.role is request.role:
        return _with_emails([before])[0]
    _within_ceiling(user_id, request.role)
    if request.role is not ProjectRole.MANAGER:
        _keeps_a_manager(before)
    after = members.change_role(before, request.role, actor)
    if request.role not in PROJECT_ACTIONS[Action.TASK_LEASE]:
        queue.release_reservations(user_id, actor, project_id)
    return _with_emails([after])[0]


def remove(project_id: str, user_id: str, actor: Actor) -> None:
    before = members.get(project_id, user_id)
    _keeps_a_manager(before)
    members.remove(before, actor)
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
