"""Demo data for the local stack: five users, and on an empty state a demo project with images.

The users are bootstrapped in Cognito directly (as an operator creates the first
admin), one per global role plus one with no group. Everything else goes through the
real paths on the local gateway as the admin: ``GET /users/<id>`` records each user
in the directory, ``POST /projects`` creates the project, ``POST .../members`` gives
each user a project role, then ``put_object`` into the data bucket under
``projects/<id>/`` sends the media to the ingest queue, whose poller runs the ingest
function. Seeding waits until ``GET /projects/<id>/tasks`` shows the tasks.
"""

from __future__ import annotations

import json
import mimetypes
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from infra.local.datasets import datasets_dir
from infra.local.resources import LocalResources
from infra.spec import ServalSpec

Say = Callable[[str], None]
MEDIA_SUFFIXES = {".png": "image", ".jpg": "image", ".jpeg": "image"}
DEMO_PROJECT: dict[str, Any] = {
    "name": "Demo: shapes",
    "description": "Synthetic images of circles and rectangles: classify each image and box every shape.",
    "media_types": ["image"],
    "label_config": {
        "controls": [
            {
                "name": "shape",
                "type": "classification",
                "classes": [{"name": "circle"}, {"name": "square"}, {"name": "triangle"}],
            },
            {
                "name": "objects",
                "type": "bbox",
                "classes": [{"name": "circle"}, {"name": "square"}, {"name": "triangle"}],
            },
        ]
    },
}


@dataclass(frozen=True)
class DemoUser:
    email: str
    role: str | None  # the global role (Cognito group); None: no group
    project_role: str | None  # the role in the demo project; None: not a member (admins need none)
    password: str

    @property
    def label(self) -> str:
        return self.role or "viewer"


def _demo_user(name: str, role: str | None, project_role: str | None) -> DemoUser:
    # Known passwords (local only); they satisfy the pool's password policy.
    return DemoUser(f"{name}@serval.local", role, project_role, f"Serval-{name.capitalize()}-2026!")


DEMO_USERS: tuple[DemoUser, ...] = (
    _demo_user("admin", "admin", None),
    _demo_user("manager", "manager", "manager"),
    _demo_user("reviewer", "reviewer", "reviewer"),
    _demo_user("annotator", "annotator", "annotator"),
    _demo_user("viewer", None, "viewer"),
)


def permissions_summary(user: DemoUser) -> str:
    """What a demo user may do, from the permission table itself."""
    from serval.domain.actor import Actor
    from serval.domain.permissions import (
        Action,
        ProjectRole,
        global_actions,
        project_actions,
        sees_all_annotations,
    )

    who = Actor(user_id=user.email, groups=(user.role,) if user.role else ())
    membership = ProjectRole(user.project_role) if user.project_role else None
    globally = ", ".join(a.value for a in global_actions(who)) or "-"
    own_only = not sees_all_annotations(who, membership, annotators_see_all=False)
    in_project = [
        f"{a.value} (their own)" if a is Action.ANNOTATION_READ and own_only else a.value
        for a in project_actions(who, membership)
    ]
    scope = "every action in every project" if user.role == "admin" else ", ".join(in_project) or "-"
    return f"global: {globally}\n      demo project ({user.project_role or 'admin'}): {scope}"


def ensure_demo_users(resources: LocalResources) -> None:
    """Create the demo users that do not exist yet (restored ones keep their saved password)."""
    cognito = boto3.client("cognito-idp")
    pool = resources.user_pool_id
    for user in DEMO_USERS:
        try:
            cognito.admin_get_user(UserPoolId=pool, Username=user.email)
            continue
        except cognito.exceptions.UserNotFoundException:
            pass
        create_cognito_user(cognito, pool, user)


def create_cognito_user(cognito: Any, pool: str, user: DemoUser) -> str:
    """A confirmed Cognito user with a permanent password, in its role's group: its sub."""
    cognito.admin_create_user(
        UserPoolId=pool,
        Username=user.email,
        UserAttributes=[
            {"Name": "email", "Value": user.email},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username=user.email, Password=user.password, Permanent=True
    )
    if user.role:
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=user.email, GroupName=user.role)
    found = cognito.admin_get_user(UserPoolId=pool, Username=user.email)
    return str(next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "sub"))


def user_id_of(resources: LocalResources, user: DemoUser) -> str:
    """The Cognito sub of a demo user."""
    found = boto3.client("cognito-idp").admin_get_user(UserPoolId=resources.user_pool_id, Username=user.email)
    return next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "sub")


def enrol_demo_users(resources: LocalResources, api_url: str, token: str, project_id: str) -> None:
    """Record the demo users in the directory and give each their role in the demo project."""
    for user in DEMO_USERS:
        user_id = user_id_of(resources, user)
        call_api(api_url, token, "GET", f"/users/{user_id}")  # adopts the user into the directory
        if user.project_role:
            body = {"user_id": user_id, "role": user.project_role}
            call_api(api_url, token, "POST", f"/projects/{project_id}/members", body)


def id_token(resources: LocalResources, user: DemoUser) -> str:
    """Sign in as a user (``USER_PASSWORD_AUTH``) and return the id token."""
    result = boto3.client("cognito-idp").initiate_auth(
        ClientId=resources.user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user.email, "PASSWORD": user.password},
    )
    return str(result["AuthenticationResult"]["IdToken"])


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


def call_api(base_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        base_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise ApiError(error.code, error.read().decode(errors="replace")) from None


def count_tasks(page: Any) -> int:
    """The number of tasks in a ``GET /projects/<id>/tasks`` page (a list, or an object holding one)."""
    if isinstance(page, list):
        return len(page)
    if isinstance(page, dict):
        for key in ("items", "tasks", "data", "results"):
            if isinstance(page.get(key), list):
                return len(page[key])
    return 0


def suitable_manifest(manifests: Path, media_types: set[str], uploaded: set[str]) -> Path | None:
    """A JSONL manifest whose every record is of the project's media types and names an uploaded file."""
    for manifest in sorted(manifests.glob("*.jsonl")):
        try:
            records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line]
        except ValueError:
            continue
        if records and all(
            isinstance(r, dict)
            and r.get("type") in media_types
            and isinstance(r.get("data"), dict)
            and r["data"].get(r["type"]) in uploaded
            for r in records
        ):
            return manifest
    return None


def upload_demo_files(spec: ServalSpec, resources: LocalResources, project_id: str, datasets: Path) -> int:
    """Upload the shapes images (and a fitting manifest, if any) under the project's upload prefix."""
    s3 = boto3.client("s3")
    bucket = resources.bucket_names[spec.uploads.bucket]
    prefix = f"{spec.upload_prefix}{project_id}/"
    images = sorted(
        p for p in (datasets / "images" / "shapes").iterdir() if p.suffix.lower() in MEDIA_SUFFIXES
    )
    uploaded = set()
    for image in images:
        relative = image.relative_to(datasets).as_posix()
        content_type = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=prefix + relative, Body=image.read_bytes(), ContentType=content_type)
        uploaded.add(relative)
    manifest = suitable_manifest(datasets / "manifests", set(DEMO_PROJECT["media_types"]), uploaded)
    if manifest is not None:
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}manifests/{manifest.name}",
            Body=manifest.read_bytes(),
            ContentType="application/x-ndjson",
        )
    return len(images)


def wait_for_tasks(base_url: str, token: str, project_id: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        seen = count_tasks(call_api(base_url, token, "GET", f"/projects/{project_id}/tasks"))
        if seen >= expected:
            break
        time.sleep(0.5)
    return seen


def seed(
    spec: ServalSpec,
    resources: LocalResources,
    api_url: str,
    *,
    with_project: bool,
    say: Say = print,
    timeout_s: float = 90,
) -> str | None:
    """Create the demo users, and the demo project when ``with_project``; return the project id."""
    ensure_demo_users(resources)
    if not with_project:
        return None
    datasets = datasets_dir()
    admin = DEMO_USERS[0]
    token = id_token(resources, admin)
    try:
        created = call_api(api_url, token, "POST", "/projects", DEMO_PROJECT)
    except ApiError as error:
        say(f"seed: could not create the demo project ({error}); is the api handler in place?")
        return None
    project_id = str(created["project_id"])
    try:
        enrol_demo_users(resources, api_url, token, project_id)
    except ApiError as error:
        say(f"seed: could not give the demo users their project roles ({error})")
    if not (datasets / "images" / "shapes").is_dir():
        say(f"seed: {datasets} has no images/shapes; the demo project has no media")
        return project_id
    uploaded = upload_demo_files(spec, resources, project_id, datasets)
    say(f"seed: uploaded {uploaded} images to project {project_id}; waiting for ingest ...")
    try:
        seen = wait_for_tasks(api_url, token, project_id, uploaded, timeout_s)
    except ApiError as error:
        say(f"seed: could not list the project's tasks ({error})")
        return project_id
    if seen >= uploaded:
        say(f"seed: {seen} tasks ready")
    else:
        say(
            f"seed: only {seen} of {uploaded} tasks visible after {timeout_s:.0f} s; ingest may still be running"
        )
    return project_id
