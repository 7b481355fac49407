"""Activity use cases: a user's history (from the audit actor index) and a project's activity
(from the per-user, per-day counters). Neither reads more than its own partition range."""

from __future__ import annotations

from datetime import UTC, date, datetime

from serval import keys
from serval.adapters import activity as counters
from serval.adapters import audit_queries, projects
from serval.domain import activity
from serval.domain.activity import ActivityEvent, ProjectActivity
from serval.domain.actor import Actor
from serval.domain.permissions import is_admin
from serval.errors import NotFound, ValidationFailed
from serval.logic.audit_queries import check_range


def user_history(
    viewer: Actor,
    user_id: str,
    project_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ActivityEvent], str | None]:
    """What ``user_id`` did, newest first. Only the user themself or an admin may look; to
    anyone else the user does not exist (404), so user ids don't leak."""
    if viewer.user_id != user_id and not is_admin(viewer):
        raise NotFound(f"user {user_id} not found", details={"user_id": user_id})
    low, high = check_range(since, until)
    f = audit_queries.AuditFilter(
        partition=keys.audit_pk(project_id) if project_id else None,
        actor_id=user_id,
        since=low,
        until=high,
    )
    records, next_cursor = audit_queries.page(f, limit, cursor)
    events = [
        ActivityEvent(
            audit_id=r.audit_id,
            at=r.at,
            project_id=r.project_id,
            action=r.action,
            target_type=r.target_type,
            target_id=r.target_id,
        )
        for r in records
    ]
    return events, next_cursor


def project_activity(
    project_id: str, since: date | datetime | None, until: date | datetime | None
) -> ProjectActivity:
    """Who annotated in a project between two UTC days (inclusive; default: the last 30 days),
    how much per day, and their lead times (sum; approximate median)."""
    first, last, rows = project_counters(project_id, since, until)
    return activity.summarize(project_id, first, last, rows)


def project_counters(
    project_id: str, since: date | datetime | None, until: date | datetime | None
) -> tuple[date, date, list[activity.CounterRow]]:
    """The range of UTC days asked for (default: the last 30) and the project's counter rows in it."""
    projects.get(project_id)
    first, last = activity.default_range(datetime.now(UTC).date())
    if until is not None:
        last = activity.to_day(until)
    if since is not None:
        first = activity.to_day(since)
    elif until is not None:
        first = activity.default_range(last)[0]
    if first > last:
        raise ValidationFailed(
            "since must not be after until", details={"since": first.isoformat(), "until": last.isoformat()}
        )
    if activity.days_between(first, last) > activity.MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"the range is at most {activity.MAX_RANGE_DAYS} days",
            details={"since": first.isoformat(), "until": last.isoformat()},
        )
    return first, last, counters.read_range(project_id, first, last)
