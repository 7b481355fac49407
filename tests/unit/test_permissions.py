"""Who may do what: the role table, checked for every role and every action."""

from __future__ import annotations

import pytest

from serval.domain.actor import Actor
from serval.domain.permissions import Action, allowed, require
from serval.errors import Forbidden

A = Action
READS = {A.PROJECT_READ, A.TASK_READ, A.IMPORT_READ, A.ANNOTATION_READ}
LABELLER = READS | {A.ANNOTATION_CREATE}
EXPECTED: dict[str, set[Action]] = {
    "admin": set(Action),
    "manager": set(Action),
    "reviewer": LABELLER,
    "annotator": LABELLER,
    "none": set(),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "admin": ("admin",),
    "manager": ("manager",),
    "reviewer": ("reviewer",),
    "annotator": ("annotator",),
    "none": (),
}
CASES = [(role, action) for role in EXPECTED for action in Action]


def actor(*groups: str) -> Actor:
    return Actor(user_id="u-1", username="ada", groups=groups)


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{r}:{a.value}" for r, a in CASES])
def test_role_table(role: str, action: Action) -> None:
    # Given an actor holding one role / When it tries an action
    who = actor(*GROUPS[role])
    expected = action in EXPECTED[role]

    # Then allowed() and require() agree with the table
    assert allowed(who, action) is expected
    if expected:
        require(who, action)
    else:
        with pytest.raises(Forbidden):
            require(who, action)


@pytest.mark.parametrize("groups", [("system",), ("guests",), ("Admin",)])
def test_unknown_groups_grant_nothing(groups: tuple[str, ...]) -> None:
    # Given only groups outside the role table (names are case-sensitive) / Then nothing is allowed
    assert not any(allowed(actor(*groups), a) for a in Action)


def test_groups_combine() -> None:
    # Given an annotator who also holds an unrelated group and the manager role / Then manager rights apply
    assert allowed(actor("annotator", "guests", "manager"), A.PROJECT_CREATE)


def test_require_raises_forbidden_with_details() -> None:
    # Given an annotator / When it tries to delete a task
    with pytest.raises(Forbidden) as info:
        require(actor("annotator"), A.TASK_DELETE)

    # Then the error is a 403 naming the action and the role
    err = info.value
    assert err.code == "forbidden"
    assert err.details == {"action": "task:delete", "role": "annotator"}
    assert "task:delete" in err.message


def test_require_names_role_none_for_an_actor_without_groups() -> None:
    with pytest.raises(Forbidden) as info:
        require(actor(), A.TASK_READ)
    assert info.value.details == {"action": "task:read", "role": "none"}
