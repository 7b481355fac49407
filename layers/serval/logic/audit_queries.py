"""Audit query use cases: a project's records, the global (user management) records.

Filters are validated here (time range, target pairs); the Query plan is the adapter's.
Every page is confined to one scope (a project's partition, or GLOBAL), whichever index
answers it, so a page never holds another project's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from serval import keys
from serval.adapters import audit_queries, projects, tasks
from serval.domain.audit import AuditRecord, TaskEvent
from serval.errors import ValidationFailed


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    descending: bool = True


def time_bound(moment: datetime) -> str:
    """A time as audit sort keys hold it: ISO-8601 UTC with milliseconds and ``Z``.

    A naive time is taken as UTC.
    """
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def check_range(since: datetime | None, until: datetime | None) -> tuple[str | None, str | None]:
    """The bounds as sort-key strings; 422 unless ``since`` is before ``until``."""
    low = time_bound(since) if since else None
    high = time_bound(until) if until else None
    if low and high and low >= high:
        raise ValidationFailed(
            "since must be before until",
            details={"since": since.isoformat(), "until": until.isoformat()},  # type: ignore[union-attr]
        )
    return low, high


def to_filter(partition: str | None, q: AuditQuery) -> audit_queries.AuditFilter:
    if bool(q.target_type) != bool(q.target_id):
        raise ValidationFailed(
            "target_type and target_id go together",
            details={"target_type": q.target_type, "target_id": q.target_id},
        )
    since, until = check_range(q.since, q.until)
    return audit_queries.AuditFilter(
        partition=partition,
        actor_id=q.actor,
        target_type=q.target_type,
        target_id=q.target_id,
        action=q.action,
        since=since,
        until=until,
        descending=q.descending,
    )


def project_page(
    project_id: str, q: AuditQuery, limit: int, cursor: str | None
) -> tuple[list[AuditRecord], str | None]:
    """One page of a project's audit records (404 for an unknown project)."""
    f = to_filter(keys.audit_pk(project_id), q)
    projects.get(project_id)
    return audit_queries.page(f, limit, cursor)


def task_page(
    project_id: str, task_id: str, descending: bool, limit: int, cursor: str | None
) -> tuple[list[TaskEvent], str | None]:
    """One page of a task's history (404 for an unknown task, or another project's)."""
    tasks.get_item(project_id, task_id)
    f = to_filter(
        keys.audit_pk(project_id), AuditQuery(target_type="task", target_id=task_id, descending=descending)
    )
    records, next_cursor = audit_queries.page(f, limit, cursor)
    return [TaskEvent.of(r) for r in records], next_cursor


def global_page(
    project_id: str | None, q: AuditQuery, limit: int, cursor: str | None
) -> tuple[list[AuditRecord], str | None]:
    """One page of the GLOBAL scope's records, or of one project's when ``project_id`` is given."""
    return audit_queries.page(to_filter(keys.audit_pk(project_id), q), limit, cursor)
