"""The Cognito user pool's admin API: the only place Serval calls it."""

from __future__ import annotations

from typing import Any

from serval.adapters import clients
from serval.errors import AlreadyExists, NotFound, ValidationFailed
from serval.settings import settings


def _pool() -> str:
    pool = settings().USER_POOL_ID
    if not pool:
        raise RuntimeError("USER_POOL_ID is not set for this function")
    return pool


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def create_user(email: str, temporary_password: str | None, send_invite: bool) -> dict[str, str]:
    """Create the user (email verified: an admin vouches for it). Returns sub and username."""
    from botocore.exceptions import ClientError

    params: dict[str, Any] = {
        "UserPoolId": _pool(),
        "Username": email,
        "UserAttributes": [
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    }
    if temporary_password is not None:
        params["TemporaryPassword"] = temporary_password
    if send_invite:
        params["DesiredDeliveryMediums"] = ["EMAIL"]
    else:
        params["MessageAction"] = "SUPPRESS"
    try:
        user = clients.cognito().admin_create_user(**params)["User"]
    except ClientError as exc:
        code = _code(exc)
        if code in ("UsernameExistsException", "AliasExistsException"):
            raise AlreadyExists(
                f"a user with email {email} already exists", details={"email": email}
            ) from exc
        if code in ("InvalidPasswordException", "InvalidParameterException"):
            message = exc.response.get("Error", {}).get("Message", "invalid user")
            raise ValidationFailed(message, details={"email": email}) from exc
        raise
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
    return {"sub": attributes["sub"], "username": user["Username"]}


def delete_user(username: str) -> None:
    clients.cognito().admin_delete_user(UserPoolId=_pool(), Username=username)


def set_groups(username: str, add: list[str], remove: list[str]) -> None:
    cognito = clients.cognito()
    for group in add:
        cognito.admin_add_user_to_group(UserPoolId=_pool(), Username=username, GroupName=group)
    for group in remove:
        cognito.admin_remove_user_from_group(UserPoolId=_pool(), Username=username, GroupName=group)


def set_enabled(username: str, enabled: bool) -> None:
    """Enable or disable sign-in. Disabling also revokes the user's refresh tokens."""
    from botocore.exceptions import ClientError

    cognito = clients.cognito()
    try:
        if enabled:
            cognito.admin_enable_user(UserPoolId=_pool(), Username=username)
        else:
            cognito.admin_disable_user(UserPoolId=_pool(), Username=username)
            cognito.admin_user_global_sign_out(UserPoolId=_pool(), Username=username)
    except ClientError as exc:
        if _code(exc) == "UserNotFoundException":
            raise NotFound(
                f"user {username} not found in the user pool", details={"username": username}
            ) from exc
        raise


def groups_of(username: str) -> list[str]:
    response = clients.cognito().admin_list_groups_for_user(UserPoolId=_pool(), Username=username)
    return [g["GroupName"] for g in response.get("Groups", [])]


def find_by_sub(sub: str) -> dict[str, Any] | None:
    """A user created outside Serval (e.g. in the console): username, email, enabled."""
    response = clients.cognito().list_users(UserPoolId=_pool(), Filter=f'sub = "{sub}"', Limit=1)
    users = response.get("Users", [])
    if not users:
        return None
    user = users[0]
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
    if attributes.get("sub") != sub:  # a filter the pool did not apply must not match someone else
        return None
    return {"username": user["Username"], "email": attributes.get("email", ""), "enabled": user["Enabled"]}
