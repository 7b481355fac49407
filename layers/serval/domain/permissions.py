"""Who may do what: one table of actions x roles, and the one function that decides.

Two kinds of role:

* **Global roles** are Cognito groups: ``admin``, ``manager``, ``reviewer``, ``annotator``.
  They decide the global actions (create a project, manage users, read the directory).
  A global ``admin`` may also do every project action in every project.
* **Project roles** come from membership items: ``manager``, ``reviewer``, ``annotator``,
  ``viewer``. They decide the project actions. A caller's global role is the ceiling of
  the project roles it can hold: an ``annotator`` made project ``manager`` acts as an
  annotator there (see :func:`effective_project_role`).

Every API route declares one :class:`Action`. Routes under ``/projects/{project_id}``
are project-scoped: a caller who is not a member (and not an admin) gets 404, the same
answer as for a project that does not exist, so project ids don't leak.
"""

from __future__ import annotations

from enum import StrEnum

from serval.domain.actor import Actor


class Action(StrEnum):
    # global
    PROJECT_CREATE = "project:create"
    PROJECT_LIST = "project:list"
    SELF_READ = "self:read"
    USER_READ = "user:read"
    USER_MANAGE = "user:manage"
    USER_ACTIVITY_READ = "user:activity:read"
    AUDIT_READ_ALL = "audit:read:all"
    WEBHOOK_MANAGE_ALL = "webhook:manage:all"  # organisation-wide subscriptions
    # project-scoped
    PROJECT_READ = "project:read"
    PROJECT_UPDATE = "project:update"
    PROJECT_ARCHIVE = "project:archive"
    MEMBER_READ = "member:read"
    MEMBER_MANAGE = "member:manage"
    TASK_CREATE = "task:create"
    TASK_READ = "task:read"
    TASK_UPDATE = "task:update"
    TASK_DELETE = "task:delete"
    TASK_HISTORY_READ = "task:history:read"
    BULK_UPDATE = "task:bulk"
    UPLOAD_CREATE = "upload:create"
    IMPORT_READ = "import:read"
    ANNOTATION_CREATE = "annotation:create"
    ANNOTATION_READ = "annotation:read"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    AUDIT_EXPORT = "audit:export"
    EXPORT_CREATE = "export:create"
    EXPORT_READ = "export:read"
    ACTIVITY_READ = "activity:read"
    TASK_LEASE = "task:lease"
    TASK_ASSIGN = "task:assign"
    TASK_GOLD = "task:gold"
    REVIEW_LEASE = "review:lease"
    REVIEW_DECIDE = "review:decide"
    WEBHOOK_MANAGE = "webhook:manage"  # the project's subscriptions, their deliveries and replays


class GlobalRole(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"


class ProjectRole(StrEnum):
    MANAGER = "manager"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {ProjectRole.VIEWER: 0, ProjectRole.ANNOTATOR: 1, ProjectRole.REVIEWER: 2, ProjectRole.MANAGER: 3}

A = Action
G = GlobalRole
P = ProjectRole
_ANYONE: frozenset[GlobalRole | None] = frozenset({*GlobalRole, None})  # None: a user in no group
_ALL_PROJECT = frozenset(ProjectRole)

# Global actions -> the global roles (Cognito groups) that may perform them; None is no group.
GLOBAL_ACTIONS: dict[Action, frozenset[GlobalRole | None]] = {
    A.PROJECT_CREATE: frozenset({G.ADMIN, G.MANAGER}),
    A.PROJECT_LIST: _ANYONE,
    A.SELF_READ: _ANYONE,
    A.USER_READ: frozenset({G.ADMIN, G.MANAGER}),  # managers look people up to add them
    A.USER_MANAGE: frozenset({G.ADMIN}),
    A.USER_ACTIVITY_READ: _ANYONE,  # your own; an admin's for anyone (see the activity logic)
    A.AUDIT_READ_ALL: frozenset({G.ADMIN}),
    A.WEBHOOK_MANAGE_ALL: frozenset({G.ADMIN}),
}

# Project actions -> the project roles that may perform them. Global admins may do all.
PROJECT_ACTIONS: dict[Action, frozenset[ProjectRole]] = {
    A.PROJECT_READ: _ALL_PROJECT,
    A.PROJECT_UPDATE: frozenset({P.MANAGER}),
    A.PROJECT_ARCHIVE: frozenset({P.MANAGER}),
    A.MEMBER_READ: frozenset({P.MANAGER, P.REVIEWER}),
    A.MEMBER_MANAGE: frozenset({P.MANAGER}),
    A.TASK_CREATE: frozenset({P.MANAGER}),
    A.TASK_READ: _ALL_PROJECT,
    A.TASK_UPDATE: frozenset({P.MANAGER}),
    A.TASK_DELETE: frozenset({P.MANAGER}),
    A.TASK_HISTORY_READ: frozenset({P.MANAGER, P.REVIEWER}),
    A.UPLOAD_CREATE: frozenset({P.MANAGER}),
    A.IMPORT_READ: frozenset({P.MANAGER, P.REVIEWER, P.VIEWER}),
    A.ANNOTATION_CREATE: frozenset({P.MANAGER, P.REVIEWER, P.ANNOTATOR}),
    # annotators read only their own, unless the project's settings allow more
    A.ANNOTATION_READ: _ALL_PROJECT,
    A.AUDIT_READ: frozenset({P.MANAGER}),
    A.AUDIT_VERIFY: frozenset({P.MANAGER}),
    A.AUDIT_EXPORT: frozenset({P.MANAGER}),
    A.BULK_UPDATE: frozenset({P.MANAGER}),
    A.EXPORT_CREATE: frozenset({P.MANAGER}),
    A.EXPORT_READ: frozenset({P.MANAGER, P.REVIEWER, P.VIEWER}),
    A.ACTIVITY_READ: frozenset({P.MANAGER}),
    # the labelling queue: lease, heartbeat, release, skip, submit
    A.TASK_LEASE: frozenset({P.MANAGER, P.REVIEWER, P.ANNOTATOR}),
    A.TASK_ASSIGN: frozenset({P.MANAGER}),
    A.TASK_GOLD: frozenset({P.MANAGER}),
    A.REVIEW_LEASE: frozenset({P.MANAGER, P.REVIEWER}),
    A.REVIEW_DECIDE: frozenset({P.MANAGER, P.REVIEWER}),
    A.WEBHOOK_MANAGE: frozenset({P.MANAGER}),
}

# The strongest project role each global role may hold; no group at all: viewer.
CEILING: dict[GlobalRole | None, ProjectRole] = {
    G.ADMIN: P.MANAGER,
    G.MANAGER: P.MANAGER,
    G.REVIEWER: P.REVIEWER,
    G.ANNOTATOR: P.ANNOTATOR,
    None: P.VIEWER,
}


class Decision(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"  # 403: the caller may see the object but not do this
    HIDE = "hide"  # 404: the caller may not even know the object exists


def global_role(groups: tuple[str, ...] | list[str]) -> GlobalRole | None:
    """The strongest global role among ``groups`` (unknown groups are ignored)."""
    return next((role for role in GlobalRole if role.value in groups), None)


def ceiling(groups: tuple[str, ...] | list[str]) -> ProjectRole:
    return CEILING[global_role(groups)]


def effective_project_role(groups: tuple[str, ...] | list[str], member_role: ProjectRole) -> ProjectRole:
    """The membership role, capped by the caller's global role."""
    cap = ceiling(groups)
    return member_role if member_role.rank <= cap.rank else cap


def is_admin(actor: Actor) -> bool:
    return G.ADMIN.value in actor.groups


def is_project_action(action: Action) -> bool:
    return action in PROJECT_ACTIONS


def decide(actor: Actor, action: Action, member_role: ProjectRole | None = None) -> Decision:
    """Whether ``actor`` may perform ``action``; project actions take the caller's membership role."""
    if action in GLOBAL_ACTIONS:
        role = global_role(actor.groups)
        return Decision.ALLOW if role in GLOBAL_ACTIONS[action] else Decision.FORBID
    if is_admin(actor):
        return Decision.ALLOW
    if member_role is None:
        return Decision.HIDE
    effective = effective_project_role(actor.groups, member_role)
    return Decision.ALLOW if effective in PROJECT_ACTIONS[action] else Decision.FORBID


def global_actions(actor: Actor) -> list[Action]:
    role = global_role(actor.groups)
    return [a for a, roles in GLOBAL_ACTIONS.items() if role in roles]


def project_actions(actor: Actor, member_role: ProjectRole | None) -> list[Action]:
    return [a for a in PROJECT_ACTIONS if decide(actor, a, member_role) is Decision.ALLOW]


def sees_all_annotations(actor: Actor, member_role: ProjectRole | None, annotators_see_all: bool) -> bool:
    """Annotators see only their own annotations unless the project allows more."""
    if is_admin(actor) or member_role is None:
        return is_admin(actor)
    effective = effective_project_role(actor.groups, member_role)
    return effective is not ProjectRole.ANNOTATOR or annotators_see_all


def annotates_outside_queue(actor: Actor, member_role: ProjectRole | None) -> bool:
    """Whether ``actor`` may annotate a task they do not lease (``POST …/annotations``): admins
    and project managers; everyone else only on the task whose labelling lease they hold."""
    if is_admin(actor) or member_role is None:
        return is_admin(actor)
    return effective_project_role(actor.groups, member_role) is ProjectRole.MANAGER
