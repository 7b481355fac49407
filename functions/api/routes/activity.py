"""Activity: a user's history, and who is annotating how much in a project."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AwareDatetime

from api.guard import actor, guarded
from api.routes.common import Cursor, Limit, Page
from serval.domain.activity import ActivityEvent, ProjectActivity
from serval.domain.permissions import Action
from serval.logic import activity, stats
from serval.logic.stats import ProjectStats

router = APIGatewayRouter()
Id = Annotated[str, Path(min_length=1, max_length=128)]
ProjectFilter = Annotated[str | None, Query(min_length=1, max_length=64, description="Only in this project.")]
Since = Annotated[AwareDatetime | None, Query(description="ISO-8601 time with offset: at or after it.")]
Until = Annotated[AwareDatetime | None, Query(description="ISO-8601 time with offset: before it.")]
FirstDay = Annotated[
    date | None, Query(description="First UTC day (yyyy-mm-dd), inclusive; default: 30 days ago.")
]
LastDay = Annotated[date | None, Query(description="Last UTC day (yyyy-mm-dd), inclusive; default: today.")]


@router.get(
    "/users/<user_id>/activity",
    tags=["activity"],
    summary="A user's history, newest first (yourself; admins: anyone)",
    **guarded(Action.USER_ACTIVITY_READ),
)
def user_activity(
    user_id: Id,
    project_id: ProjectFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ActivityEvent]:
    items, next_cursor = activity.user_history(
        actor(router), user_id, project_id, since, until, limit, cursor
    )
    return Page[ActivityEvent](items=items, next_cursor=next_cursor)


@router.get(
    "/me/activity",
    tags=["activity"],
    summary="Your own history, newest first",
    **guarded(Action.USER_ACTIVITY_READ),
)
def my_activity(
    project_id: ProjectFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ActivityEvent]:
    me = actor(router)
    items, next_cursor = activity.user_history(me, me.user_id, project_id, since, until, limit, cursor)
    return Page[ActivityEvent](items=items, next_cursor=next_cursor)


@router.get(
    "/projects/<project_id>/activity",
    tags=["activity"],
    summary="Who annotated in a project: per user and day, with lead times",
    **guarded(Action.ACTIVITY_READ),
)
def project_activity(project_id: Id, since: FirstDay = None, until: LastDay = None) -> ProjectActivity:
    return activity.project_activity(project_id, since, until)


@router.get(
    "/projects/<project_id>/stats",
    tags=["activity"],
    summary="Progress from counters: tasks by status, annotations per day, median lead time",
    description="Answers from counters with a fixed number of reads, whatever the number of tasks.",
    **guarded(Action.PROJECT_READ),
)
def project_stats(project_id: Id, since: FirstDay = None, until: LastDay = None) -> ProjectStats:
    return stats.project_stats(project_id, since, until)
