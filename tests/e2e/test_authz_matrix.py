"""The authorization matrix: every route of the OpenAPI document x every role x own/other project.

Routes come from ``docs/openapi.json`` (a test keeps it equal to the code), so a new
route is covered without touching this file; a route with a request body or a path
parameter this file does not know fails loudly until it is taught here. The expected
status comes from the written policy (``tests/policy.py``, the README's table), never
from the code under test. Everything runs through the local gateway with real Cognito
ID tokens on the stack ``make dev`` starts.

Scopes:
* ``own``: the caller's project (where they are a member), with its own objects;
* ``other``: a project the caller is not a member of (admins may act there);
* ``tampered``: the caller's project in the path, another project's object ids.

Besides the status, no answer outside ``other`` for an admin may contain the other
project's canary text.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.local.receiver import Receiver
from infra.local.seed import DEMO_USERS, DemoUser
from tests import policy
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, aws_client, start_dev_stack, wait_for

pytestmark = pytest.mark.e2e
OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())
CANARY = "CANARY-" + secrets.token_hex(6)
LABELS = {
    "controls": [
        {"name": "sentiment", "type": "classification", "classes": [{"name": "pos"}, {"name": "neg"}]},
    ]
}
ANNOTATION = {"results": [{"control": "sentiment", "type": "classification", "labels": ["pos"]}]}
PASSWORD = "Matrix-Passw0rd!2026"
# Every world's subscriptions deliver here (on loopback, as the local environment allows)
RECEIVER = Receiver(secrets=[]).start()
SHARED_ORG: dict[str, str] = {}  # the organisation subscription the worlds share


def _routes() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if "x-serval-action" in operation
    ]


ROUTES = _routes()


# ---- identities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A caller: their global group and the role they hold in every ``own`` project."""

    name: str
    group: str | None
    project_role: str | None  # None: not a member (the admin acts without one)
    email: str
    password: str


def _demo(user: DemoUser) -> Identity:
    return Identity(user.label, user.role, user.project_role, user.email, user.password)


IDENTITIES: tuple[Identity, ...] = (
    *(_demo(u) for u in DEMO_USERS),
    # a project manager whose global role was later lowered to annotator: capped to annotator
    Identity("capped", "annotator", "manager", "capped@serval.local", PASSWORD),
)


# ---- HTTP -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def http(stack: DevStack, method: str, path: str, token: str, body: Any = None) -> Answer:
    request = urllib.request.Request(
        stack.api_url + path,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        data=json.dumps(body).encode() if body is not None else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode())


@dataclass
class Env:
    stack: DevStack
    tokens: dict[str, str]
    user_ids: dict[str, str]
    aws: Callable[[str], Any]

    def call(self, who: str, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        answer = http(self.stack, method, path, self.tokens[who], body)
        if expect is not None:
            assert answer.status == expect, f"{who} {method} {path}: {answer.status} {answer.text[:400]}"
        return answer.json

    def invite(self, groups: list[str]) -> str:
        """A new user, invited by the admin through the API; returns their id."""
        body = {
            "email": f"u-{secrets.token_hex(5)}@serval.local",
            "groups": groups,
            "temporary_password": PASSWORD,
            "send_invite": False,
        }
        return str(self.call("admin", "POST", "/users", body, expect=201)["user_id"])


@dataclass
class World:
    """Two projects and an object of every kind in each."""

    own: str
    other: str
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # scope -> path parameter -> value


def _first_item(page: Any) -> str:
    return str(page["items"][0])


def build_world(env: Env, fresh_org: bool = False) -> World:
    own = env.call("admin", "POST", "/projects", _project_body("matrix own"), expect=201)["project_id"]
    other = env.call("admin", "POST", "/projects", _project_body(f"matrix other {CANARY}"), expect=201)[
        "project_id"
    ]
    capped_id = env.user_ids["capped"]
    env.call("admin", "PUT", f"/users/{capped_id}/groups", {"groups": ["manager"]}, expect=200)
    for identity in IDENTITIES:
        if identity.project_role:
            body = {"user_id": env.user_ids[identity.name], "role": identity.project_role}
            env.call("admin", "POST", f"/projects/{own}/members", body, expect=201)
    env.call("admin", "PUT", f"/users/{capped_id}/groups", {"groups": ["annotator"]}, expect=200)
    world = World(own, other)
    for scope, project, text in (("own", own, "hello"), ("other", other, f"secret {CANARY}")):
        member = env.invite(["annotator"])
        env.call(
            "admin", "POST", f"/projects/{project}/members", {"user_id": member, "role": "viewer"}, expect=201
        )
        task = env.call(
            "admin", "POST", f"/projects/{project}/tasks", [{"data": {"text": text}}], expect=201
        )["task_ids"][0]
        annotation = env.call(
            "admin", "POST", f"/projects/{project}/tasks/{task}/annotations", ANNOTATION, expect=201
        )["annotation_id"]
        imports = env.call("admin", "GET", f"/projects/{project}/imports", expect=200)
        world.ids[scope] = {
            "project_id": project,
            "task_id": task,
            "annotation_id": annotation,
            "import_id": imports["items"][0]["import_id"],
            "member_id": member,
        }
        exports = ("POST", "/projects/{project_id}/audit/exports")
        operation = next((op for m, p, op in ROUTES if (m, p) == exports), None)
        if operation is not None:
            job = env.call(
                "admin",
                "POST",
                exports[1].format(project_id=project),
                {"format": "jsonl"},
                success_status(operation),
            )
            world.ids[scope]["job_id"] = job["job_id"]
        dataset_exports = ("POST", "/projects/{project_id}/exports")
        operation = next((op for m, p, op in ROUTES if (m, p) == dataset_exports), None)
        if operation is not None:
            job = env.call(
                "admin",
                "POST",
                dataset_exports[1].format(project_id=project),
                {"format": "jsonl"},
                success_status(operation),
            )
            world.ids[scope]["export_id"] = job["job_id"]
        hook = env.call("admin", "POST", f"/projects/{project}/webhooks", {"url": RECEIVER.url}, expect=201)
        world.ids[scope] |= _webhook_ids(env, f"/projects/{project}/webhooks", hook)
        bulk = ("POST", "/projects/{project_id}/bulk")
        operation = next((op for m, p, op in ROUTES if (m, p) == bulk), None)
        if operation is not None:
            job = env.call(
                "admin",
                "POST",
                bulk[1].format(project_id=project),
                {"operation": "set_priority", "priority": 1, "selection": {"task_ids": [task]}},
                success_status(operation),
            )
            world.ids[scope]["bulk_id"] = job["job_id"]
    # the organisation's subscription: one for every world (a scope holds at most 20), except
    # for the world of a case that deletes it
    if fresh_org or not SHARED_ORG:
        org_hook = env.call(
            "admin", "POST", "/webhooks", {"url": RECEIVER.url, "event_types": ["webhook.test"]}, expect=201
        )
        ids = _webhook_ids(env, "/webhooks", org_hook)
        if fresh_org:
            world.ids["org"] = ids
            return world
        SHARED_ORG.update(ids)
    world.ids["org"] = dict(SHARED_ORG)
    return world


def _webhook_ids(env: Env, base: str, created: dict[str, Any]) -> dict[str, str]:
    """A subscription to the matrix's receiver, with one logged delivery (a test event)."""
    RECEIVER.secrets.append(created["secret"])
    test = env.call("admin", "POST", f"{base}/{created['webhook_id']}/test", expect=200)
    assert test["delivery"]["outcome"] == "delivered", test
    return {"webhook_id": created["webhook_id"], "event_id": test["event_id"]}


def _project_body(name: str) -> dict[str, Any]:
    return {"name": name, "media_types": ["text"], "label_config": LABELS}


# ---- request bodies ---------------------------------------------------------------------------

Body = Callable[[Env, World, str], Any]


def _upload_to_complete(env: Env, world: World, scope: str) -> Any:
    """A real multipart upload (admin) in the path's project, ready to complete."""
    project = world.ids[scope]["project_id"] if scope != "tampered" else world.own
    upload = env.call(
        "admin",
        "POST",
        f"/projects/{project}/uploads",
        {
            "filename": f"m-{secrets.token_hex(3)}.txt",
            "content_type": "text/plain",
            "size": 5,
            "multipart": True,
        },
        expect=201,
    )
    request = urllib.request.Request(
        upload["part_urls"][0],
        method="PUT",
        data=b"hello",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        etag = response.headers["ETag"]
    return {
        "key": upload["key"],
        "upload_id": upload["upload_id"],
        "parts": [{"part_number": 1, "etag": etag}],
    }


BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/projects"): lambda env, w, s: _project_body("matrix new"),
    ("PATCH", "/projects/{project_id}"): lambda env, w, s: {"description": "changed"},
    ("POST", "/projects/{project_id}/tasks"): lambda env, w, s: [{"data": {"text": "more"}}],
    ("PATCH", "/projects/{project_id}/tasks/{task_id}"): lambda env, w, s: {"priority": 5},
    ("POST", "/projects/{project_id}/tasks/{task_id}/annotations"): lambda env, w, s: ANNOTATION,
    ("POST", "/projects/{project_id}/uploads"): lambda env, w, s: {
        "filename": "a.txt",
        "content_type": "text/plain",
    },
    ("POST", "/projects/{project_id}/uploads/complete"): _upload_to_complete,
    ("POST", "/projects/{project_id}/uploads/parts"): lambda env, w, s: {
        "key": f"projects/{w.ids[s]['project_id'] if s != 'tampered' else w.own}/big.jsonl",
        "upload_id": "matrix-upload",
        "first_part": 2,
    },
    ("POST", "/projects/{project_id}/exports"): lambda env, w, s: {
        "format": "jsonl",
        "filters": {"approved_only": False},
    },
    ("POST", "/projects/{project_id}/bulk"): lambda env, w, s: {
        "operation": "tag",
        "tags": ["matrix"],
        "selection": {"task_ids": [w.ids["own"]["task_id"]]},
    },
    ("POST", "/projects/{project_id}/members"): lambda env, w, s: {
        "user_id": env.invite([]),
        "role": "viewer",
    },
    ("PATCH", "/projects/{project_id}/members/{user_id}"): lambda env, w, s: {"role": "annotator"},
    ("POST", "/users"): lambda env, w, s: {
        "email": f"n-{secrets.token_hex(5)}@serval.local",
        "groups": ["annotator"],
        "temporary_password": PASSWORD,
        "send_invite": False,
    },
    ("PUT", "/users/{user_id}/groups"): lambda env, w, s: {"groups": ["reviewer"]},
    ("POST", "/projects/{project_id}/audit/exports"): lambda env, w, s: {"format": "jsonl"},
    ("POST", "/projects/{project_id}/tasks/{task_id}/submit"): lambda env, w, s: ANNOTATION,
    # a member of the path's project who may annotate: the annotator in their own project; in the
    # other project only its creator (the admin, its manager) is one
    ("POST", "/projects/{project_id}/tasks/{task_id}/assign"): lambda env, w, s: {
        "user_id": env.user_ids["admin" if s == "other" else "annotator"],
    },
    ("POST", "/projects/{project_id}/tasks/{task_id}/review"): lambda env, w, s: {"decision": "approve"},
    # the world's tasks are new and nobody labels them: they may become gold
    ("PUT", "/projects/{project_id}/tasks/{task_id}/gold"): lambda env, w, s: ANNOTATION,
    ("POST", "/projects/{project_id}/webhooks"): lambda env, w, s: {"url": RECEIVER.url},
    ("PATCH", "/projects/{project_id}/webhooks/{webhook_id}"): lambda env, w, s: {"description": "changed"},
    ("POST", "/projects/{project_id}/webhooks/{webhook_id}/replay"): lambda env, w, s: EVERYTHING,
    ("POST", "/webhooks"): lambda env, w, s: {"url": RECEIVER.url, "event_types": ["webhook.test"]},
    ("PATCH", "/webhooks/{webhook_id}"): lambda env, w, s: {"description": "changed"},
    ("POST", "/webhooks/{webhook_id}/replay"): lambda env, w, s: EVERYTHING,
}
EVERYTHING = {"from": "2020-01-01T00:00:00.000Z", "to": "2100-01-01T00:00:00.000Z"}

# Routes that change their objects for good: each case gets a world of its own.
CONSUMING = {
    # a lease taken here would change what every later case on the shared world finds
    ("POST", "/projects/{project_id}/next"),
    ("POST", "/projects/{project_id}/review/next"),
    ("POST", "/projects/{project_id}/archive"),
    ("DELETE", "/projects/{project_id}/tasks/{task_id}"),
    ("DELETE", "/projects/{project_id}/members/{user_id}"),
    ("DELETE", "/projects/{project_id}/webhooks/{webhook_id}"),
    ("DELETE", "/webhooks/{webhook_id}"),
}
ORG_DELETE = ("DELETE", "/webhooks/{webhook_id}")


# Queue routes that need a lease the caller holds: on the world's tasks (status ``new``, never
# leased) an allowed call answers 409 ``lease_not_held``, and changes nothing.
CONFLICT_WHEN_IDLE = {
    ("POST", "/projects/{project_id}/tasks/{task_id}/heartbeat"),
    ("POST", "/projects/{project_id}/tasks/{task_id}/release"),
    ("POST", "/projects/{project_id}/tasks/{task_id}/skip"),
    ("POST", "/projects/{project_id}/tasks/{task_id}/submit"),
    ("POST", "/projects/{project_id}/tasks/{task_id}/review"),
}


# Writes outside the queue: managers (and admins) on any open task; anyone else needs the task's
# labelling lease, which nobody holds on the world's tasks (409 ``lease_not_held``).
LEASE_OR_MANAGER = {("POST", "/projects/{project_id}/tasks/{task_id}/annotations")}


# ---- expectations -----------------------------------------------------------------------------


def success_status(operation: dict[str, Any]) -> int:
    return min(int(code) for code in operation["responses"] if code.startswith("2"))


def expected_status(method: str, path: str, operation: dict[str, Any], who: Identity, scope: str) -> int:
    action = operation["x-serval-action"]
    if "{project_id}" in path:
        member_role = who.project_role if scope in ("own", "tampered") else None
        verdict = policy.allowed(action, who.group, member_role)
        if verdict is None:
            return 404  # another project is reported missing, never forbidden
        if not verdict:
            return 403
        if scope == "tampered" and re.search(r"\{(?!project_id)", path):
            return 404  # the object is not in this project
        effective = policy.effective(who.group, member_role) if member_role else None
        if path.endswith("/annotations/{annotation_id}") and effective == "annotator":
            return 404  # an annotator sees only their own annotations (these are the admin's)
        if (method, path) in CONFLICT_WHEN_IDLE:
            return 409  # nobody holds a lease on the world's tasks
        if (method, path) in LEASE_OR_MANAGER and who.group != "admin" and effective != "manager":
            return 409
        return success_status(operation)
    verdict = policy.allowed(action, who.group, None)
    if path.startswith("/users/{user_id}"):
        own = scope == "own"
        if action == "user:activity:read":
            return success_status(operation) if own or who.group == "admin" else 404
        if action == "user:manage" and verdict and own:
            return 403  # nobody changes their own groups or status
    return success_status(operation) if verdict else 403


def scopes_of(path: str) -> tuple[str, ...]:
    if "{project_id}" in path:
        return ("own", "other", "tampered") if re.search(r"\{(?!project_id)", path) else ("own", "other")
    if "{user_id}" in path:
        return ("own", "other")
    return ("global",)


CASES = [
    (method, path, who, scope)
    for (method, path, _), who in itertools.product(ROUTES, IDENTITIES)
    for scope in scopes_of(path)
]


def _fill(path: str, env: Env, world: World, who: Identity, scope: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "project_id":
            return world.other if scope == "other" else world.own
        if name in ("webhook_id", "event_id") and not path.startswith("/projects/"):
            return world.ids["org"][name]  # the organisation's subscription and its test event
        if name == "user_id" and not path.startswith("/projects/"):
            return env.user_ids[who.name] if scope == "own" else world.ids["other"]["member_id"]
        source = "own" if scope == "own" else "other"
        key = "member_id" if name == "user_id" else name
        if key not in world.ids[source]:
            pytest.fail(f"teach the matrix about the path parameter {{{name}}} of {path}")
        return world.ids[source][key]

    return re.sub(r"\{(\w+)\}", value, path)


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    stack = start_dev_stack(tmp_path_factory.mktemp("matrix-state"))

    def aws(service: str) -> Any:
        return aws_client(stack, service)

    cognito = aws("cognito-idp")
    pool = cognito.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0]["ClientId"]

    def sign_in(identity: Identity) -> str:
        result = cognito.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": identity.email, "PASSWORD": identity.password},
        )
        return str(result["AuthenticationResult"]["IdToken"])

    def sub(email: str) -> str:
        user = cognito.admin_get_user(UserPoolId=pool, Username=email)
        return next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")

    admin = IDENTITIES[0]
    tokens = {admin.name: sign_in(admin)}
    matrix = Env(stack, tokens, {}, aws)
    capped = next(i for i in IDENTITIES if i.name == "capped")
    invited = matrix.call(
        "admin",
        "POST",
        "/users",
        {
            "email": capped.email,
            "groups": ["annotator"],
            "temporary_password": PASSWORD,
            "send_invite": False,
        },
        expect=201,
    )
    cognito.admin_set_user_password(UserPoolId=pool, Username=capped.email, Password=PASSWORD, Permanent=True)
    for identity in IDENTITIES:
        tokens[identity.name] = sign_in(identity)
        matrix.user_ids[identity.name] = invited["user_id"] if identity is capped else sub(identity.email)
        matrix.call(
            "admin", "GET", f"/users/{matrix.user_ids[identity.name]}", expect=200
        )  # in the directory
    try:
        yield matrix
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def shared_world(env: Env) -> World:
    return build_world(env)


# ---- the matrix -------------------------------------------------------------------------------


def test_every_route_declares_an_action_the_policy_knows() -> None:
    known = set(policy.GLOBAL) | set(policy.PROJECT)
    public = {
        (m.upper(), p)
        for p, item in OPENAPI["paths"].items()
        for m, op in item.items()
        if not op.get("security")
    }
    for method, path, operation in ROUTES:
        assert operation["x-serval-action"] in known, f"{method} {path}: add its action to tests/policy.py"
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if (method.upper(), path) not in public:
                assert "x-serval-action" in operation, f"{method.upper()} {path} declares no action"
    for (method, path), _ in BODIES.items():
        assert any(m == method and p == path for m, p, _ in ROUTES), f"stale sample body for {method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "who", "scope"), CASES, ids=[f"{m} {p} {w.name} {s}" for m, p, w, s in CASES]
)
def test_route_answers_exactly_what_the_policy_says(
    env: Env, shared_world: World, method: str, path: str, who: Identity, scope: str
) -> None:
    operation = OPENAPI["paths"][path][method.lower()]
    consuming = (method, path) in CONSUMING
    world = build_world(env, fresh_org=(method, path) == ORG_DELETE) if consuming else shared_world
    body: Any = None
    if "requestBody" in operation:
        if (method, path) not in BODIES:
            pytest.fail(f"teach the matrix a valid request body for {method} {path}")
        body = BODIES[(method, path)](env, world, scope)
    url = _fill(path, env, world, who, scope)

    # When the caller calls the route
    answer = http(env.stack, method, url, env.tokens[who.name], body)

    # Then the status is exactly the policy's
    expected = expected_status(method, path, operation, who, scope)
    assert answer.status == expected, f"{who.name} {method} {url}: {answer.status} {answer.text[:500]}"
    # And a refusal is machine-readable
    if answer.status >= 400:
        assert answer.json["error"]["code"]
    # And nothing of the other project leaks to anyone but an admin (who may see every project)
    if who.group != "admin":
        assert CANARY not in answer.text, f"{who.name} {method} {url} leaked the other project"


def test_an_annotator_lists_only_their_own_annotations(env: Env) -> None:
    # Given a task the annotator leased once the workflow queued it, with the admin's annotation
    # and the annotator's (written while holding the lease)
    project = build_world(env).own
    task = wait_for(
        lambda: env.call("annotator", "POST", f"/projects/{project}/next", expect=200)["task"],
        what="the workflow to queue a task",
    )["task_id"]
    url = f"/projects/{project}/tasks/{task}/annotations"
    theirs = env.call("admin", "POST", url, ANNOTATION, expect=201)["annotation_id"]
    mine = env.call("annotator", "POST", url, ANNOTATION, expect=201)["annotation_id"]

    # When the annotator, the capped manager and the reviewer list them
    listed = {
        who: {a["annotation_id"] for a in env.call(who, "GET", url, expect=200)["items"]}
        for who in ("annotator", "capped", "reviewer")
    }

    # Then annotators see only their own; the reviewer sees both
    assert listed["annotator"] == {mine}
    assert listed["capped"] == set()
    # (the task /next gave may carry annotations from earlier cases on the shared world too)
    assert {mine, theirs} <= listed["reviewer"]
    # And the admin's is missing for the annotator, by id too
    assert http(env.stack, "GET", f"{url}/{theirs}", env.tokens["annotator"]).status == 404


def test_nobody_grants_themselves_a_role(env: Env, shared_world: World) -> None:
    project = shared_world.own
    for who in ("manager", "reviewer", "annotator", "viewer"):
        me = env.user_ids[who]
        # a member changing their own role, or re-adding themselves with a higher one
        changed = http(
            env.stack, "PATCH", f"/projects/{project}/members/{me}", env.tokens[who], {"role": "manager"}
        )
        added = http(
            env.stack,
            "POST",
            f"/projects/{project}/members",
            env.tokens[who],
            {"user_id": me, "role": "manager"},
        )
        grouped = http(env.stack, "PUT", f"/users/{me}/groups", env.tokens[who], {"groups": ["admin"]})
        assert (changed.status, added.status, grouped.status) == (403, 403, 403), who
    # and a manager may not raise an annotator above their global role
    annotator = env.user_ids["annotator"]
    raised = http(
        env.stack,
        "PATCH",
        f"/projects/{project}/members/{annotator}",
        env.tokens["manager"],
        {"role": "manager"},
    )
    assert raised.status == 422
    assert raised.json["error"]["details"]["ceiling"] == "annotator"


def _new_signed_in_user(env: Env, groups: list[str]) -> tuple[str, str, str]:
    """A user invited through the API, with a permanent password; returns (id, email, id token)."""
    email = f"d-{secrets.token_hex(5)}@serval.local"
    body = {"email": email, "groups": groups, "temporary_password": PASSWORD, "send_invite": False}
    user_id = env.call("admin", "POST", "/users", body, expect=201)["user_id"]
    cognito = env.aws("cognito-idp")
    pool = cognito.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client = cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0]["ClientId"]
    cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    signed = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )
    return str(user_id), email, str(signed["AuthenticationResult"]["IdToken"])


def test_a_disabled_users_existing_token_stops_working(env: Env) -> None:
    # Given a signed-in user whose token works
    user_id, email, token = _new_signed_in_user(env, ["annotator"])
    assert http(env.stack, "GET", "/me", token).status == 200

    # When an admin disables them
    disabled = env.call("admin", "POST", f"/users/{user_id}/disable", expect=200)

    # Then their still-unexpired token is refused with a machine-readable reason, and they cannot sign in
    assert disabled["enabled"] is False
    refused = http(env.stack, "GET", "/me", token)
    assert refused.status == 401
    assert refused.json["error"]["code"] == "user_disabled"
    cognito = env.aws("cognito-idp")
    pool = cognito.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    assert cognito.admin_get_user(UserPoolId=pool, Username=email)["Enabled"] is False
    # And the change is audited in the global scope
    audit = env.call("admin", "GET", f"/audit?target_type=user&target_id={user_id}", expect=200)
    assert "user.disable" in {r["action"] for r in audit["items"]}

    # When they are enabled again, the same token works again
    env.call("admin", "POST", f"/users/{user_id}/enable", expect=200)
    assert http(env.stack, "GET", "/me", token).status == 200


def test_a_removed_group_stops_working_before_the_token_expires(env: Env) -> None:
    # Given a global manager whose token says "manager"
    user_id, _, token = _new_signed_in_user(env, ["manager"])
    body = {"name": "by a manager", "media_types": ["text"], "label_config": LABELS}
    assert http(env.stack, "POST", "/projects", token, body).status == 201

    # When an admin lowers them to annotator
    env.call("admin", "PUT", f"/users/{user_id}/groups", {"groups": ["annotator"]}, expect=200)

    # Then the same token no longer creates projects, and /me reports the new role
    assert http(env.stack, "POST", "/projects", token, body).status == 403
    assert http(env.stack, "GET", "/me", token).json["role"] == "annotator"


# ---- audit completeness -----------------------------------------------------------------------

# Routes that change nothing Serval stores themselves: what they enable is audited when it happens.
NOT_AUDITED_HERE = {
    ("POST", "/projects/{project_id}/next"): "the queue is empty here: nothing leased (task.lease)",
    ("POST", "/projects/{project_id}/review/next"): "nothing in review: nothing leased (review.lease)",
    (
        "POST",
        "/projects/{project_id}/uploads/parts",
    ): "signs more part URLs of an upload audited at upload.create",
    **{route: "needs a lease nobody holds here: refused with 409" for route in CONFLICT_WHEN_IDLE},
}


def _audit_records(env: Env) -> list[dict[str, Any]]:
    ddb = env.aws("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("-audit"))
    pages = ddb.get_paginator("scan").paginate(TableName=table, FilterExpression="attribute_exists(audit_id)")
    return [item for page in pages for item in page["Items"]]


def _verified(env: Env, path: str, until: Callable[[Any], bool]) -> Any:
    """Poll a verify route until ``until`` holds (the chainer links records as the stream delivers them)."""
    import time

    deadline = time.monotonic() + 60
    report = None
    while time.monotonic() < deadline:
        report = env.call("admin", "GET", path, expect=200)
        if until(report):
            return report
        time.sleep(0.3)
    pytest.fail(f"{path} never reached the expected state: {report}")


def test_every_mutation_leaves_exactly_one_audit_record_and_the_chain_verifies(env: Env) -> None:
    # Given a fresh world, and every mutating route of the API (consuming ones last)
    world = build_world(env)
    admin = IDENTITIES[0]
    mutating = [(m, p, op) for m, p, op in ROUTES if m != "GET" and (m, p) not in NOT_AUDITED_HERE]
    # (the archive last of the consuming ones, and restore after it, so it changes something and is audited)
    mutating.sort(
        key=lambda r: (r[1].endswith("/restore"), (r[0], r[1]) in CONSUMING, r[1].endswith("/archive"))
    )
    assert len(mutating) >= 15

    # When the admin calls each one once
    for method, path, operation in mutating:
        body = BODIES[(method, path)](env, world, "own") if "requestBody" in operation else None
        scope = "other" if path.startswith("/users/{user_id}") else "own"  # nobody changes themselves
        url = _fill(path, env, world, admin, scope)
        before = {r["audit_id"]["S"] for r in _audit_records(env)}
        answer = http(env.stack, method, url, env.tokens["admin"], body)
        assert answer.status == success_status(operation), f"{method} {url}: {answer.text[:300]}"

        # Then exactly one new audit record of the admin's describes it, with the request's origin and time
        # (the pipelines audit their own work meanwhile, as system actors or, for an object the
        # admin uploaded, as the admin, but never with a request's source IP)
        new = [
            r
            for r in _audit_records(env)
            if r["audit_id"]["S"] not in before
            and r["actor_id"]["S"] == env.user_ids["admin"]
            and "source_ip" in r
        ]
        assert len(new) == 1, f"{method} {path} wrote {[r['action']['S'] for r in new]}"
        record = new[0]
        assert record["actor_id"]["S"] == env.user_ids["admin"]
        assert record["actor_role"]["S"] == "admin"
        assert record["source_ip"]["S"] == "127.0.0.1"
        assert record["request_id"]["S"] and record["at"]["S"] and record["user_agent"]["S"]

    # And the project's chain and the global chain verify once the chainer has linked everything
    for path in (f"/projects/{world.own}/audit/verify", "/audit/verify"):
        report = _verified(env, path, lambda r: r["pending"] == 0 and r["ok"])
        assert report["broken"] is None
        assert report["records_checked"] >= 1


def test_verify_finds_a_tampered_and_a_forged_record(env: Env) -> None:
    # Given a project with a few audited changes, all linked
    project = env.call("admin", "POST", "/projects", _project_body("tamper target"), expect=201)["project_id"]
    for priority in (1, 2, 3):
        env.call("admin", "PATCH", f"/projects/{project}", {"description": f"v{priority}"}, expect=200)
    verify = f"/projects/{project}/audit/verify"
    linked = _verified(env, verify, lambda r: r["pending"] == 0 and r["ok"] and r["records_checked"] == 4)
    assert linked["head_seq"] == 4
    ddb = env.aws("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("-audit"))
    records = ddb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PROJECT#{project}"}},
    )["Items"]
    by_seq = {int(r["chain_seq"]["N"]): r for r in records}

    # When someone with table access rewrites the third record's "after" directly in DynamoDB
    third = by_seq[3]
    ddb.update_item(
        TableName=table,
        Key={"PK": third["PK"], "SK": third["SK"]},
        UpdateExpression="SET #after = :after",
        ExpressionAttributeNames={"#after": "after"},
        ExpressionAttributeValues={":after": {"S": '{"description": "never happened"}'}},
    )

    # Then verify reports that link
    report = env.call("admin", "GET", verify, expect=200)
    assert report["ok"] is False
    assert (report["broken"]["seq"], report["broken"]["audit_id"]) == (3, third["audit_id"]["S"])

    # When the record is put back, and a forged record is inserted directly into the table
    ddb.put_item(TableName=table, Item=third)
    forged = dict(by_seq[4])
    for attribute in ("chain_seq", "prev_hash", "hash", "GSI3PK", "GSI3SK"):
        forged.pop(attribute, None)
    forged_id = "aud_forged" + secrets.token_hex(4)
    forged |= {
        "audit_id": {"S": forged_id},
        "SK": {"S": by_seq[4]["SK"]["S"] + "x"},
        "action": {"S": "project.archive"},
    }
    ddb.put_item(TableName=table, Item=forged)

    # Then the chainer links it (the chain is a faithful log) and verify reports the forgery by its seal
    report = _verified(env, verify, lambda r: r["pending"] == 0 and not r["ok"])
    assert (report["broken"]["seq"], report["broken"]["audit_id"]) == (5, forged_id)
    assert "seal" in report["broken"]["reason"]
