"""The permission policy as the README states it, written out independently of the code.

Tests compare the code's table (serval.domain.permissions) and the API's behaviour with
this. A new Action fails the tests until it is added here (and to the README).

Global actions: which global roles (Cognito groups) may perform them.
Project actions: which project roles may perform them; global admins may do every
project action in every project, without a membership.
"""

from __future__ import annotations

GLOBAL_ROLES = ("admin", "manager", "reviewer", "annotator")
PROJECT_ROLES = ("manager", "reviewer", "annotator", "viewer")

ANYONE: set[str | None] = {*GLOBAL_ROLES, None}  # None: a signed-in user in no group

GLOBAL: dict[str, set[str | None]] = {
    "project:create": {"admin", "manager"},
    "project:list": ANYONE,
    "self:read": ANYONE,
    "user:read": {"admin", "manager"},
    "user:manage": {"admin"},
    "user:activity:read": ANYONE,
    "audit:read:all": {"admin"},
    "webhook:manage:all": {"admin"},
}

PROJECT: dict[str, set[str]] = {
    "project:read": set(PROJECT_ROLES),
    "project:update": {"manager"},
    "project:archive": {"manager"},
    "member:read": {"manager", "reviewer"},
    "member:manage": {"manager"},
    "task:create": {"manager"},
    "task:read": set(PROJECT_ROLES),
    "task:update": {"manager"},
    "task:delete": {"manager"},
    "task:history:read": {"manager", "reviewer"},
    "task:bulk": {"manager"},
    "upload:create": {"manager"},
    "import:read": {"manager", "reviewer", "viewer"},
    "annotation:create": {"manager", "reviewer", "annotator"},
    "annotation:read": set(PROJECT_ROLES),
    "audit:read": {"manager"},
    "audit:verify": {"manager"},
    "audit:export": {"manager"},
    "export:create": {"manager"},
    "export:read": {"manager", "reviewer", "viewer"},
    "activity:read": {"manager"},
    "task:lease": {"manager", "reviewer", "annotator"},
    "task:assign": {"manager"},
    "task:gold": {"manager"},
    "review:lease": {"manager", "reviewer"},
    "review:decide": {"manager", "reviewer"},
    "webhook:manage": {"manager"},
}

# The strongest project role each global role may hold (no group at all: viewer).
CEILING = {
    "admin": "manager",
    "manager": "manager",
    "reviewer": "reviewer",
    "annotator": "annotator",
    None: "viewer",
}
RANK = {"viewer": 0, "annotator": 1, "reviewer": 2, "manager": 3}


def effective(global_role: str | None, project_role: str) -> str:
    cap = CEILING[global_role]
    return project_role if RANK[project_role] <= RANK[cap] else cap


def allowed(action: str, global_role: str | None, project_role: str | None) -> bool | None:
    """True/False for allowed/forbidden; None when the project is hidden (a non-member)."""
    if action in GLOBAL:
        return global_role in GLOBAL[action]
    if global_role == "admin":
        return True
    if project_role is None:
        return None
    return effective(global_role, project_role) in PROJECT[action]
