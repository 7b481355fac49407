"""Activity: per-user, per-day annotation counters and their lead-time statistics (pure).

Each annotation adds, atomically and in the same transaction that creates it, to the
counter of (project, day, author): the count, the sum of lead times, and one of
``BUCKETS`` histogram buckets of its lead time. The histogram is what makes a median
possible without reading the annotations.

The buckets are logarithmic (powers of two seconds):

    bucket 0: [0, 1) s    bucket i (1..10): [2^(i-1), 2^i) s    bucket 11: [1024 s, ∞)

**The median is approximate.** :func:`approximate_median` finds the bucket holding the
middle rank and interpolates linearly inside it, as if the bucket's values were spread
evenly. The estimate therefore lies in the bucket of the middle value: within a factor
of two of it (within 1 s below 2 s). With an even count, whose true median is the mean of
two middle values in possibly different buckets, the estimate lies between those two
values. The open last bucket has no upper edge: a median that falls there is reported as
1024 s (a lower bound). Counts and sums are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, Field

BUCKETS = 12
MAX_RANGE_DAYS = 366


def bucket_of(lead_time_s: float) -> int:
    """The histogram bucket of a lead time (negative times count as 0)."""
    if lead_time_s < 1:
        return 0
    return min(BUCKETS - 1, int(lead_time_s).bit_length())


def bucket_bounds(bucket: int) -> tuple[float, float | None]:
    """``[low, high)`` of a bucket in seconds; ``high`` is ``None`` for the open last bucket."""
    if bucket == 0:
        return 0.0, 1.0
    low = float(2 ** (bucket - 1))
    return low, (None if bucket == BUCKETS - 1 else low * 2)


def bucket_attribute(bucket: int) -> str:
    """The counter item's attribute holding a bucket's count (``h00``..``h11``)."""
    return f"h{bucket:02d}"


def merge(histograms: Sequence[Sequence[int]]) -> list[int]:
    total = [0] * BUCKETS
    for histogram in histograms:
        for i, n in enumerate(histogram[:BUCKETS]):
            total[i] += n
    return total


def approximate_median(histogram: Sequence[int]) -> float | None:
    """The median lead time estimated from a histogram (see the module doc); ``None`` when empty."""
    n = sum(histogram)
    if n <= 0:
        return None
    middle = n / 2.0  # the rank (0-based, continuous) of the median
    seen = 0
    for bucket, count in enumerate(histogram):
        if count <= 0:
            continue
        if seen + count > middle or bucket == len(histogram) - 1:
            low, high = bucket_bounds(bucket)
            if high is None:
                return low
            return round(low + (high - low) * (middle - seen) / count, 3)
        seen += count
    return None  # unreachable: the counts add up to n


def day_of(iso_time: str) -> str:
    """The UTC day (``yyyy-mm-dd``) of an ISO-8601 UTC timestamp as Serval writes them."""
    return iso_time[:10]


def days_between(first: date, last: date) -> int:
    return (last - first).days + 1


def default_range(today: date, days: int = 30) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today


def to_day(moment: date | datetime) -> date:
    """A date, or the UTC day of an aware datetime."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    return moment


# ---- API models ----------------------------------------------------------------------------


class DayActivity(BaseModel):
    day: str = Field(description="UTC day, yyyy-mm-dd.")
    annotations: int
    lead_time_s: float = Field(description="Sum of the annotations' lead times that day.")


class UserActivitySummary(BaseModel):
    user_id: str
    last_at: str | None = Field(description="Time of the user's last annotation in the range.")
    annotations: int
    lead_time_s_total: float
    lead_time_s_median: float | None = Field(
        description="Approximate median lead time (log2-bucket histogram: within a factor of 2)."
    )
    days: list[DayActivity]


class ProjectActivity(BaseModel):
    project_id: str
    since: str = Field(description="First UTC day of the range (inclusive).")
    until: str = Field(description="Last UTC day of the range (inclusive).")
    active_users: int = Field(description="Distinct users who annotated in the range.")
    annotations: int
    users: list[UserActivitySummary] = Field(description="Most recently active first.")


class ActivityEvent(BaseModel):
    """One entry of a user's history: what they did, where and when (no before/after payloads)."""

    audit_id: str
    at: str
    project_id: str | None
    action: str
    target_type: str
    target_id: str


class CounterRow(BaseModel):
    """One counter item, as read: a user's annotations on one day."""

    user_id: str
    day: str
    annotations: int
    lead_time_s: float
    last_at: str | None
    histogram: list[int]


def summarize(project_id: str, first: date, last: date, rows: Sequence[CounterRow]) -> ProjectActivity:
    """Fold counter rows into per-user summaries (rows in any order)."""
    by_user: dict[str, list[CounterRow]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    users = []
    for user_id, user_rows in by_user.items():
        user_rows.sort(key=lambda r: r.day)
        last_at = max((r.last_at for r in user_rows if r.last_at), default=None)
        users.append(
            UserActivitySummary(
                user_id=user_id,
                last_at=last_at,
                annotations=sum(r.annotations for r in user_rows),
                lead_time_s_total=round(sum(r.lead_time_s for r in user_rows), 3),
                lead_time_s_median=approximate_median(merge([r.histogram for r in user_rows])),
                days=[
                    DayActivity(day=r.day, annotations=r.annotations, lead_time_s=r.lead_time_s)
                    for r in user_rows
                ],
            )
        )
    users.sort(key=lambda u: (u.last_at or "", u.user_id), reverse=True)
    return ProjectActivity(
        project_id=project_id,
        since=first.isoformat(),
        until=last.isoformat(),
        active_users=len(users),
        annotations=sum(u.annotations for u in users),
        users=users,
    )
