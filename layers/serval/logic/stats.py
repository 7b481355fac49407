"""Project progress from counters only: counts by status, throughput per day, lead time,
agreement and the review rejection rate.

Answers with a fixed number of reads whatever the project's size: one Query of the counter
shards (status counts and quality totals, see ``serval.adapters.dynamo.METRICS``), one
GetItem of the project, a Query of the per-user, per-day activity counters over the
range (users x days items, never the tasks), and a count of the project's overdue outbox
entries (a GSI4 partition that holds only undelivered handoffs).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from serval.adapters import dynamo
from serval.domain import activity
from serval.logic import activity as activity_logic
from serval.logic import reconcile


class DayThroughput(BaseModel):
    day: str = Field(description="UTC day, yyyy-mm-dd.")
    annotations: int


class AgreementStats(BaseModel):
    rounds: int = Field(description="Consensus rounds completed (projects with overlap >= 2), ever.")
    mean: float | None = Field(description="Mean agreement of those rounds (0..1); null without rounds.")
    below_threshold: int = Field(description="Rounds below the project's threshold (sent to review).")


class ReviewStats(BaseModel):
    approved: int = Field(description="Review approvals, ever (an edit-and-approve counts here).")
    edited: int = Field(description="Approvals that kept the reviewer's edit.")
    rejected: int = Field(description="Review rejections, ever (each rework round counts).")
    rejection_rate: float | None = Field(
        description="rejected / (approved + rejected); null before the first decision."
    )


class PendingRepairs(BaseModel):
    handoffs: int = Field(
        description="Results of human work (a round's last submit, a review decision, a requeue from review) "
        "committed but not yet delivered to the task's workflow, past their grace period. The reconciler, "
        "which runs every few minutes, delivers each one (re-creating a lost execution first)."
    )


class ProjectStats(BaseModel):
    project_id: str
    tasks: int = Field(description="Tasks in the project (every status but archived).")
    by_status: dict[str, int]
    since: str = Field(description="First UTC day of the activity range (inclusive).")
    until: str = Field(description="Last UTC day of the activity range (inclusive).")
    annotations: int = Field(description="Annotations submitted in the range.")
    active_users: int
    throughput: list[DayThroughput] = Field(
        description="Annotations per day in the range, days with none left out."
    )
    lead_time_s_median: float | None = Field(
        description="Approximate median time spent per annotation in the range (log2 buckets)."
    )
    agreement: AgreementStats
    review: ReviewStats
    pending_repairs: PendingRepairs = Field(
        description="Half-finished work the reconciler has yet to repair."
    )


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def project_stats(
    project_id: str, since: date | datetime | None, until: date | datetime | None
) -> ProjectStats:
    """The project's progress; activity over ``since``..``until`` (UTC days, default the last 30)."""
    first, last, rows = activity_logic.project_counters(project_id, since, until)  # 404: unknown project
    counters = dynamo.read_project_counters(project_id)
    by_status, m = counters.by_status, counters.metrics
    per_day: dict[str, int] = {}
    for row in rows:
        per_day[row.day] = per_day.get(row.day, 0) + row.annotations
    return ProjectStats(
        project_id=project_id,
        tasks=sum(n for status, n in by_status.items() if status != "archived"),
        by_status=by_status,
        since=first.isoformat(),
        until=last.isoformat(),
        annotations=sum(row.annotations for row in rows),
        active_users=len({row.user_id for row in rows}),
        throughput=[DayThroughput(day=d, annotations=n) for d, n in sorted(per_day.items())],
        lead_time_s_median=activity.approximate_median(activity.merge([row.histogram for row in rows])),
        agreement=AgreementStats(
            rounds=int(m["agreement_n"]),
            mean=_ratio(m["agreement_sum"], m["agreement_n"]),
            below_threshold=int(m["agreement_below"]),
        ),
        review=ReviewStats(
            approved=int(m["review_approved"]),
            edited=int(m["review_edited"]),
            rejected=int(m["review_rejected"]),
            rejection_rate=_ratio(m["review_rejected"], m["review_approved"] + m["review_rejected"]),
        ),
        pending_repairs=PendingRepairs(handoffs=reconcile.pending(project_id)),
    )
