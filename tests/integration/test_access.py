"""Users, memberships and the per-request access check, through the API handler on moto.

The authorization matrix (tests/e2e/test_authz_matrix.py) covers every route x role with
real JWTs; these tests cover the rules behind it case by case, quickly.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from serval.adapters import users as directory
from serval.domain.actor import Actor
from serval.logic import access
from tests.integration.api_client import call
from tests.integration.conftest import Aws
from tests.integration.people import enrol, join
from tests.integration.test_api import _create_project

PASSWORD = "Access-Passw0rd!2026"


def _invite(admin: Actor, email: str, groups: list[str], **extra: Any) -> Any:
    body = {"email": email, "groups": groups, "temporary_password": PASSWORD, "send_invite": False} | extra
    return call("POST", "/users", admin, body)


def _actor(user: dict[str, Any]) -> Actor:
    return Actor(user_id=user["user_id"], username=user["username"], groups=tuple(user["groups"]))


def _audit_actions(aws: Aws, pk: str) -> list[str]:
    items = aws.ddb.query(
        TableName=aws.env["AUDIT_TABLE"],
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]
    return [i["action"]["S"] for i in items]


def test_an_admin_invites_a_user_into_cognito_and_the_directory(aws: Aws, admin: Actor) -> None:
    # When an admin invites a reviewer with a temporary password
    created = _invite(admin, "Rita@Example.com", ["reviewer"])

    # Then Cognito has the user (must change the password), in the reviewer group
    assert created.status == 201, created.body
    user = created.body
    assert (user["email"], user["groups"], user["enabled"]) == ("rita@example.com", ["reviewer"], True)
    cognito = boto3.client("cognito-idp")
    pool = aws.env["USER_POOL_ID"]
    found = cognito.admin_get_user(UserPoolId=pool, Username="rita@example.com")
    assert found["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username="rita@example.com")["Groups"]
    assert [g["GroupName"] for g in groups] == ["reviewer"]
    # And the directory lists them, and the invitation is audited in the global scope (no password in it)
    listed = call("GET", "/users?email_prefix=rita", admin).body["items"]
    assert [u["user_id"] for u in listed] == [user["user_id"]]
    assert _audit_actions(aws, "GLOBAL") == ["user.create"]
    assert PASSWORD not in str(aws.ddb.scan(TableName=aws.env["AUDIT_TABLE"])["Items"])
    # And inviting the same email again is a conflict
    again = _invite(admin, "rita@example.com", [])
    assert (again.status, again.body["error"]["code"]) == (409, "already_exists")


def test_a_bad_invitation_leaves_nothing_behind(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A weak temporary password is refused by the pool's policy: a 422 and no user
    weak = _invite(admin, "weak@example.com", [], temporary_password="short")
    assert weak.status == 422
    cognito = boto3.client("cognito-idp")
    assert cognito.list_users(UserPoolId=aws.env["USER_POOL_ID"])["Users"] == []

    # When the directory write fails after Cognito created the user
    def fail(*_: Any, **__: Any) -> None:
        raise RuntimeError("directory down")

    monkeypatch.setattr(directory, "create", fail)
    failed = _invite(admin, "half@example.com", ["annotator"])

    # Then the request fails and the Cognito user is rolled back: no partial state
    assert failed.status == 500
    assert cognito.list_users(UserPoolId=aws.env["USER_POOL_ID"])["Users"] == []


def test_memberships_follow_the_rules(aws: Aws, admin: Actor) -> None:
    # Given a project created by a global manager (who becomes its manager), and two invited users
    boss = _actor(_invite(admin, "boss@example.com", ["manager"]).body)
    worker = _invite(admin, "worker@example.com", ["annotator"]).body
    project = _create_project(boss)
    members_url = f"/projects/{project}/members"
    assert [(m["user_id"], m["role"]) for m in call("GET", members_url, boss).body["items"]] == [
        (boss.user_id, "manager")
    ]

    # A role above the user's global role is refused; one within it is granted
    above = call("POST", members_url, boss, {"user_id": worker["user_id"], "role": "reviewer"})
    assert above.status == 422
    assert above.body["error"]["code"] == "role_above_ceiling"
    added = call("POST", members_url, boss, {"user_id": worker["user_id"], "role": "annotator"})
    assert added.status == 201
    assert added.body["email"] == "worker@example.com"
    assert call("POST", members_url, boss, {"user_id": worker["user_id"], "role": "viewer"}).status == 409
    # An unknown user is a 404
    assert call("POST", members_url, boss, {"user_id": "nobody", "role": "viewer"}).status == 404
    # The member now sees the project in their list, with their role and actions
    mine = call("GET", "/me/projects", _actor(worker)).body["items"]
    assert [(p["project_id"], p["role"]) for p in mine] == [(project, "annotator")]
    assert "annotation:create" in mine[0]["actions"]
    assert "task:create" not in mine[0]["actions"]
    assert [p["project_id"] for p in call("GET", "/projects", _actor(worker)).body["items"]] == [project]

    # The last manager can be neither demoted nor removed; nobody changes their own role
    own = call("PATCH", f"{members_url}/{boss.user_id}", boss, {"role": "viewer"})
    assert (own.status, own.body["error"]["code"]) == (403, "self_grant")
    last = call("PATCH", f"{members_url}/{boss.user_id}", admin, {"role": "viewer"})
    assert (last.status, last.body["error"]["code"]) == (409, "last_manager")
    assert call("DELETE", f"{members_url}/{boss.user_id}", admin).status == 409

    # Changes and removal are audited in the project's scope
    assert call("PATCH", f"{members_url}/{worker['user_id']}", boss, {"role": "viewer"}).status == 200
    assert call("DELETE", f"{members_url}/{worker['user_id']}", boss).status == 204
    assert call("GET", f"/projects/{project}", _actor(worker)).status == 404
    actions = _audit_actions(aws, f"PROJECT#{project}")
    assert actions.count("member.add") == 1
    assert actions.count("member.update") == 1
    assert actions.count("member.remove") == 1


def test_a_manager_of_one_project_cannot_touch_another(aws: Aws, admin: Actor, annotator: Actor) -> None:
    # Given two projects, and a manager of A only
    manager_a = Actor(user_id="u-manager-a", username="ma", groups=("manager",))
    enrol(manager_a)
    project_a, project_b = _create_project(manager_a), _create_project(admin)
    [task_b] = call("POST", f"/projects/{project_b}/tasks", admin, [{"data": {"text": "b"}}]).body["task_ids"]
    enrol(annotator)
    join(project_b, annotator, "annotator")

    # When the manager of A acts on B, directly or through A's path with B's ids
    attempts = [
        call("GET", f"/projects/{project_b}", manager_a),
        call("PATCH", f"/projects/{project_b}", manager_a, {"description": "mine now"}),
        call(
            "POST",
            f"/projects/{project_b}/members",
            manager_a,
            {"user_id": manager_a.user_id, "role": "manager"},
        ),
        call("GET", f"/projects/{project_b}/tasks/{task_b}", manager_a),
        call("DELETE", f"/projects/{project_a}/tasks/{task_b}", manager_a),
        call("GET", f"/projects/{project_a}/members/{annotator.user_id}", manager_a),
    ]

    # Then every answer is a 404 that says nothing of B's content, and B is unchanged
    assert [a.status for a in attempts] == [404] * len(attempts)
    assert call("GET", f"/projects/{project_b}/tasks/{task_b}", admin).status == 200
    assert call("GET", f"/projects/{project_b}", admin).body["description"] == ""
    # And a missing project and a hidden one answer alike
    missing = call("GET", "/projects/p_does_not_exist", manager_a)
    hidden = call("GET", f"/projects/{project_b}", manager_a)
    assert missing.body["error"]["code"] == hidden.body["error"]["code"] == "not_found"


def test_the_directory_check_is_cached_for_a_short_time(
    aws: Aws, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a user whose first request fills the cache
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    user = Actor(user_id="u-cached", username="c", groups=("manager",))
    enrol(user)
    assert call("GET", "/me", user).status == 200

    # When the directory changes behind the API's back (not through the API, which forgets at once)
    before, version = directory.get_versioned(user.user_id) or pytest.fail("not enrolled")
    directory.replace(before, before.model_copy(update={"enabled": False}), version, admin, "user.disable")
    reads = _count_reads(monkeypatch)

    # Then within AUTH_CACHE_SECONDS the cached answer is used without reading the directory
    clock[0] += int(aws.env["AUTH_CACHE_SECONDS"]) - 1
    assert call("GET", "/me", user).status == 200
    assert reads == []
    # And after it the user is refused
    clock[0] += 2
    refused = call("GET", "/me", user)
    assert (refused.status, refused.body["error"]["code"]) == (401, "user_disabled")
    assert len(reads) == 1


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = directory.get_versioned

    def counted(user_id: str, consistent: bool = False) -> Any:
        reads.append(user_id)
        return real(user_id, consistent)

    monkeypatch.setattr(directory, "get_versioned", counted)
    return reads


def test_admins_cannot_lock_themselves_out(aws: Aws) -> None:
    boss = Actor(user_id="u-root", username="root", groups=("admin",))
    enrol(boss)
    assert call("PUT", f"/users/{boss.user_id}/groups", boss, {"groups": []}).status == 403
    assert call("POST", f"/users/{boss.user_id}/disable", boss).status == 403


def test_an_email_invitation_needs_no_password(aws: Aws, admin: Actor) -> None:
    # When an admin invites a user by email only
    created = call("POST", "/users", admin, {"email": "mail@example.com", "groups": ["annotator"]})

    # Then Cognito holds the user waiting for their first sign-in with the emailed temporary password
    assert created.status == 201, created.body
    found = boto3.client("cognito-idp").admin_get_user(
        UserPoolId=aws.env["USER_POOL_ID"], Username="mail@example.com"
    )
    assert found["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert {a["Name"]: a["Value"] for a in found["UserAttributes"]}["email_verified"] == "true"
