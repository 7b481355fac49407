"""The acting identity carried into every audited change."""

from __future__ import annotations

import pytest

from serval.domain.actor import Actor


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        ((), "none"),
        (("annotator",), "annotator"),
        (("annotator", "reviewer"), "reviewer"),
        (("reviewer", "manager", "annotator"), "manager"),
        (("annotator", "admin"), "admin"),
        (("guests", "annotator"), "annotator"),
        (("guests",), "none"),
    ],
)
def test_role_is_the_strongest_group(groups: tuple[str, ...], role: str) -> None:
    # Given an actor's groups, in any order / Then its role is the strongest one it holds
    assert Actor(user_id="u", groups=groups).role == role


def test_has_any() -> None:
    who = Actor(user_id="u", groups=("reviewer",))
    assert who.has_any("admin", "reviewer")
    assert not who.has_any("admin", "manager")
    assert not who.has_any()


def test_system_actor() -> None:
    # When a pipeline acts for itself
    who = Actor.system("ingest", request_id="r-1")

    # Then it is identifiable as a system component, with no human role
    assert who.user_id == "system:ingest"
    assert who.username == "ingest"
    assert who.groups == ("system",)
    assert who.request_id == "r-1"
    assert who.role == "none"


def test_system_actor_on_behalf_of_a_user() -> None:
    who = Actor.system("ingest", on_behalf_of="ada")
    assert who.user_id == "system:ingest"
    assert who.username == "ada"
