"""Members, users and the caller's access to a project: the API's models (pydantic, no AWS)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from serval.domain.permissions import GlobalRole, ProjectRole

UserId = str
Email = Annotated[
    str,
    Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(str.lower),
]


class Member(BaseModel):
    project_id: str
    user_id: UserId
    role: ProjectRole
    email: str | None = Field(default=None, description="From the user directory, when known.")
    added_by: str
    created_at: str
    updated_at: str


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId = Field(min_length=1, max_length=128)
    role: ProjectRole


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: ProjectRole


class MyProject(BaseModel):
    """A project the caller belongs to, with the role they act with there."""

    project_id: str
    name: str
    status: str
    role: ProjectRole = Field(description="The membership role.")
    effective_role: ProjectRole = Field(description="The membership role capped by the global role.")
    actions: list[str]


class UserStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class User(BaseModel):
    user_id: UserId = Field(description="The Cognito sub.")
    username: str
    email: str
    groups: list[GlobalRole]
    enabled: bool
    created_by: str
    created_at: str
    updated_at: str


def _unique_groups(groups: list[GlobalRole]) -> list[GlobalRole]:
    return [g for g in GlobalRole if g in set(groups)]  # precedence order, no repeats


# The user pool's password policy (infra/spec.py's AuthSpec uses these numbers): checked here
# too, so a temporary password that Cognito would refuse is a 422 before any user exists.
PASSWORD_MIN_LENGTH = 12
_PASSWORD_CLASSES = {
    "a lower-case letter": str.islower,
    "an upper-case letter": str.isupper,
    "a digit": str.isdigit,
    "a symbol": lambda c: not c.isalnum() and not c.isspace(),
}


def password_problems(password: str) -> list[str]:
    """What ``password`` lacks under the pool's policy (empty when it complies)."""
    problems = [f"at least {PASSWORD_MIN_LENGTH} characters"] if len(password) < PASSWORD_MIN_LENGTH else []
    return problems + [name for name, test in _PASSWORD_CLASSES.items() if not any(test(c) for c in password)]


def _strong(password: SecretStr | None) -> SecretStr | None:
    if password is not None:
        problems = password_problems(password.get_secret_value())
        if problems:
            raise ValueError("the temporary password needs " + ", ".join(problems))
    return password


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    groups: list[GlobalRole] = Field(default_factory=list, max_length=4)
    temporary_password: SecretStr | None = Field(
        default=None,
        description="Set a temporary password (no email is sent unless send_invite is true). "
        "Without it Cognito generates one and emails the invitation.",
    )
    send_invite: bool = Field(default=True, description="Email the invitation through Cognito.")

    _groups = field_validator("groups")(_unique_groups)
    _password = field_validator("temporary_password")(_strong)


class GroupsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[GlobalRole] = Field(max_length=4)

    _groups = field_validator("groups")(_unique_groups)


class ProjectAccess(BaseModel):
    """What the guard learned about the caller and the route's project."""

    project_id: str
    member_role: ProjectRole | None = Field(description="None for an admin who is not a member.")
    admin: bool
