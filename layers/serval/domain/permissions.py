"""Who may do what. Every API route declares one Action; this table decides.

Global roles come from Cognito groups. Per-project roles (membership) refine this table
in the access-control issue; until then global roles decide.
"""

from __future__ import annotations

from enum import StrEnum

from serval.domain.actor import Actor
from serval.errors import Forbidden


class Action(StrEnum):
    PROJECT_CREATE = "project:create"
    PROJECT_READ = "project:read"
    PROJECT_UPDATE = "project:update"
    PROJECT_ARCHIVE = "project:archive"
    TASK_CREATE = "task:create"
    TASK_READ = "task:read"
    TASK_UPDATE = "task:update"
    TASK_DELETE = "task:delete"
    UPLOAD_CREATE = "upload:create"
    IMPORT_READ = "import:read"
    ANNOTATION_CREATE = "annotation:create"
    ANNOTATION_READ = "annotation:read"


A = Action
_EVERYONE = frozenset({A.PROJECT_READ, A.TASK_READ, A.IMPORT_READ, A.ANNOTATION_READ})
_LABELLERS = _EVERYONE | {A.ANNOTATION_CREATE}
_MANAGERS = frozenset(Action)

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "admin": _MANAGERS,
    "manager": _MANAGERS,
    "reviewer": _LABELLERS,
    "annotator": _LABELLERS,
}


def allowed(actor: Actor, action: Action) -> bool:
    return any(action in ROLE_ACTIONS.get(group, frozenset()) for group in actor.groups)


def require(actor: Actor, action: Action) -> None:
    if not allowed(actor, action):
        raise Forbidden(
            f"your role ({actor.role}) may not {action.value}",
            details={"action": action.value, "role": actor.role},
        )
