"""Test people: directory entries and project memberships written through the real adapters."""

from __future__ import annotations

from serval.adapters import members, users
from serval.domain.access import User
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.domain.permissions import GlobalRole, ProjectRole

SETUP = Actor.system("tests")


def enrol(actor: Actor) -> None:
    """Put ``actor`` into the user directory with the groups its token carries."""
    now = utcnow()
    users.create(
        User(
            user_id=actor.user_id,
            username=actor.username or actor.user_id,
            email=actor.email or f"{actor.user_id}@serval.test",
            groups=[GlobalRole(g) for g in actor.groups if g in GlobalRole._value2member_map_],
            enabled=True,
            created_by=SETUP.user_id,
            created_at=now,
            updated_at=now,
        ),
        SETUP,
    )


def join(project_id: str, actor: Actor, role: ProjectRole | str) -> None:
    """Make ``actor`` a member of the project with ``role``."""
    members.add(members.new(project_id, actor.user_id, ProjectRole(role), SETUP), SETUP)
