"""Who is acting, from where: carried from the edge into every audited change."""

from __future__ import annotations

from pydantic import BaseModel, Field

ROLE_ORDER = ("admin", "manager", "reviewer", "annotator")

# Object metadata (x-amz-meta-*) that names who asked for an upload URL. The API signs it into
# the presigned PUT (and sets it on a multipart upload), so the uploader cannot change it.
UPLOADED_BY = "uploaded-by"
UPLOADED_BY_ROLE = "uploaded-by-role"
UPLOADED_BY_PROJECT_ROLE = "uploaded-by-project-role"


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

    def upload_metadata(self) -> dict[str, str]:
        """The object metadata that attributes an upload to this actor."""
        metadata = {UPLOADED_BY: self.user_id, UPLOADED_BY_ROLE: self.role}
        if self.project_role:
            metadata[UPLOADED_BY_PROJECT_ROLE] = self.project_role
        return metadata

    @classmethod
    def uploader(cls, metadata: dict[str, str], request_id: str | None = None) -> Actor | None:
        """The user an object's upload metadata names (None: not uploaded through Serval).

        The roles are the ones the user held when the API signed the upload URL.
        """
        user_id = metadata.get(UPLOADED_BY)
        if not user_id:
            return None
        role = metadata.get(UPLOADED_BY_ROLE, "none")
        return cls(
            user_id=user_id,
            username=user_id,
            groups=(role,) if role in ROLE_ORDER else (),
            request_id=request_id,
            project_role=metadata.get(UPLOADED_BY_PROJECT_ROLE),
        )
