"""Who is acting, from where: carried from the edge into every audited change."""

from __future__ import annotations

from pydantic import BaseModel, Field

ROLE_ORDER = ("admin", "manager", "reviewer", "annotator")


class Actor(BaseModel):
    user_id: str = Field(description="Cognito sub, or system:<component> for pipelines.")
    username: str = ""
    email: str | None = None
    groups: tuple[str, ...] = ()
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    project_role: str | None = Field(
        default=None, description="The caller's membership role in the request's project, if any."
    )

    @property
    def role(self) -> str:
        """The strongest global role the actor holds ('none' when it has no group)."""
        return next((r for r in ROLE_ORDER if r in self.groups), "none")

    def has_any(self, *roles: str) -> bool:
        return any(r in self.groups for r in roles)

    @classmethod
    def system(cls, component: str, request_id: str | None = None, on_behalf_of: str | None = None) -> Actor:
        return cls(
            user_id=f"system:{component}",
            username=on_behalf_of or component,
            groups=("system",),
            request_id=request_id,
        )
