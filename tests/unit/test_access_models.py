"""The API models of users and members: emails, groups and the pool's password policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serval.domain.access import GroupsUpdate, UserInvite, password_problems


@pytest.mark.parametrize(
    ("password", "lacks"),
    [
        ("Serval-Admin-2026!", []),
        ("short-A1!", ["at least 12 characters"]),
        ("alllowercase-123", ["an upper-case letter"]),
        ("ALLUPPERCASE-123", ["a lower-case letter"]),
        ("NoDigitsHere-!!", ["a digit"]),
        ("NoSymbols12345", ["a symbol"]),
    ],
)
def test_password_policy(password: str, lacks: list[str]) -> None:
    assert password_problems(password) == lacks


def test_an_invite_normalises_its_email_and_groups() -> None:
    invite = UserInvite.model_validate(
        {"email": "Ann@Example.COM", "groups": ["annotator", "admin", "annotator"]}
    )
    assert invite.email == "ann@example.com"
    assert [g.value for g in invite.groups] == ["admin", "annotator"]  # precedence order, once each
    assert invite.send_invite is True


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": "a@b.co", "groups": ["superuser"]},
        {"email": "a@b.co", "temporary_password": "weak"},
        {"email": "a@b.co", "unexpected": 1},
    ],
)
def test_bad_invites_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UserInvite.model_validate(body)


def test_groups_update_refuses_unknown_groups() -> None:
    with pytest.raises(ValidationError):
        GroupsUpdate.model_validate({"groups": ["root"]})
    assert GroupsUpdate.model_validate({"groups": []}).groups == []
