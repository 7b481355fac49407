"""Who may do what: the code's table against the written policy, for every role and action."""

from __future__ import annotations

import itertools

import pytest

from serval.domain.actor import Actor
from serval.domain.permissions import (
    GLOBAL_ACTIONS,
    PROJECT_ACTIONS,
    Action,
    Decision,
    ProjectRole,
    ceiling,
    decide,
    effective_project_role,
    global_actions,
    project_actions,
    sees_all_annotations,
)
from tests import policy

GLOBAL_GROUPS: list[str | None] = [*policy.GLOBAL_ROLES, None]
MEMBERSHIPS: list[str | None] = [*policy.PROJECT_ROLES, None]
CASES = list(itertools.product(Action, GLOBAL_GROUPS, MEMBERSHIPS))


def actor(group: str | None) -> Actor:
    return Actor(user_id="u-1", username="ada", groups=(group,) if group else ())


def test_every_action_is_in_exactly_one_table_and_in_the_policy() -> None:
    assert set(GLOBAL_ACTIONS).isdisjoint(PROJECT_ACTIONS)
    assert set(GLOBAL_ACTIONS) | set(PROJECT_ACTIONS) == set(Action)
    assert {a.value for a in GLOBAL_ACTIONS} == set(policy.GLOBAL)
    assert {a.value for a in PROJECT_ACTIONS} == set(policy.PROJECT)


@pytest.mark.parametrize(
    ("action", "group", "membership"), CASES, ids=[f"{a.value}:{g}:{m}" for a, g, m in CASES]
)
def test_decision_matches_the_policy(action: Action, group: str | None, membership: str | None) -> None:
    # Given a caller with a global group and maybe a membership / When they try an action
    decision = decide(actor(group), action, ProjectRole(membership) if membership else None)

    # Then the decision is the written policy's
    expected = policy.allowed(action.value, group, membership)
    assert decision is {True: Decision.ALLOW, False: Decision.FORBID, None: Decision.HIDE}[expected]


@pytest.mark.parametrize("group", GLOBAL_GROUPS)
@pytest.mark.parametrize("membership", policy.PROJECT_ROLES)
def test_the_global_role_caps_the_project_role(group: str | None, membership: str) -> None:
    groups = (group,) if group else ()
    assert ceiling(groups).value == policy.CEILING[group]
    assert effective_project_role(groups, ProjectRole(membership)).value == policy.effective(
        group, membership
    )


@pytest.mark.parametrize("groups", [("system",), ("guests",), ("Admin",)])
def test_unknown_groups_grant_no_more_than_no_group(groups: tuple[str, ...]) -> None:
    who = Actor(user_id="u", groups=groups)
    assert global_actions(who) == [Action.PROJECT_LIST, Action.SELF_READ, Action.USER_ACTIVITY_READ]
    assert decide(who, Action.PROJECT_CREATE) is Decision.FORBID
    assert decide(who, Action.TASK_CREATE, ProjectRole.MANAGER) is Decision.FORBID  # capped to viewer
    assert decide(who, Action.TASK_READ, ProjectRole.MANAGER) is Decision.ALLOW
    assert decide(who, Action.TASK_READ, None) is Decision.HIDE


def test_admin_acts_in_every_project_without_membership() -> None:
    assert project_actions(actor("admin"), None) == list(PROJECT_ACTIONS)
    assert project_actions(actor("manager"), None) == []


@pytest.mark.parametrize(
    ("group", "membership", "project_allows", "sees_all"),
    [
        ("annotator", "annotator", False, False),
        ("annotator", "annotator", True, True),
        ("reviewer", "annotator", False, False),
        ("reviewer", "reviewer", False, True),
        ("annotator", "manager", False, False),  # capped to annotator
        ("manager", "viewer", False, True),
        ("admin", None, False, True),
        ("manager", None, False, False),
    ],
)
def test_annotators_see_only_their_own_annotations_unless_allowed(
    group: str, membership: str | None, project_allows: bool, sees_all: bool
) -> None:
    role = ProjectRole(membership) if membership else None
    assert sees_all_annotations(actor(group), role, project_allows) is sees_all
