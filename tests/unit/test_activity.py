"""Activity statistics: lead-time buckets, the approximate median, per-user summaries."""

from __future__ import annotations

import statistics
from datetime import date

import pytest

from serval.domain import activity
from serval.domain.activity import BUCKETS, CounterRow, approximate_median, bucket_bounds, bucket_of


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * BUCKETS
    for value in values:
        counts[bucket_of(value)] += 1
    return counts


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (0, 0),
        (0.99, 0),
        (-3, 0),
        (1, 1),
        (1.9, 1),
        (2, 2),
        (3.99, 2),
        (4, 3),
        (1023.9, 10),
        (1024, 11),
        (10**6, 11),
    ],
)
def test_lead_times_fall_into_log2_buckets(seconds: float, bucket: int) -> None:
    assert bucket_of(seconds) == bucket
    low, high = bucket_bounds(bucket)
    assert low <= max(seconds, 0) and (high is None or max(seconds, 0) < high)


def test_median_of_nothing_is_none() -> None:
    assert approximate_median([0] * BUCKETS) is None


def test_median_interpolates_inside_the_middle_bucket() -> None:
    # Given three lead times in [4, 8): the middle rank 1.5 of 3 sits half-way into the bucket
    assert approximate_median(_histogram([4.0, 5.0, 7.5])) == pytest.approx(6.0)


@pytest.mark.parametrize(
    "values",
    [
        [3.0],
        [1.5, 2.5, 3.5, 9.0, 70.0],
        [12.0, 13.0, 14.0, 200.0, 300.0, 301.0, 302.0],
        [0.2, 0.3, 0.9, 1.1, 45.0],
        [float(v) for v in range(1, 400, 7)],
    ],
)
def test_median_of_an_odd_count_is_within_a_factor_of_two(values: list[float]) -> None:
    true = statistics.median(values)
    estimate = approximate_median(_histogram(values))
    assert estimate is not None
    if true >= 2:
        assert true / 2 <= estimate <= true * 2
    else:
        assert abs(estimate - true) <= 1


def test_median_of_an_even_count_lies_between_the_middle_values() -> None:
    values = [3.0, 5.0, 6.0, 40.0, 50.0, 100.0]
    estimate = approximate_median(_histogram(values))
    assert estimate is not None
    assert 6.0 <= estimate <= 40.0


def test_median_in_the_open_last_bucket_is_its_lower_edge() -> None:
    assert approximate_median(_histogram([5000.0, 6000.0, 7000.0])) == 1024.0


def test_histograms_merge_bucket_by_bucket() -> None:
    assert activity.merge([[1] * BUCKETS, [2] * BUCKETS]) == [3] * BUCKETS


def test_summary_folds_days_per_user_most_recent_first() -> None:
    # Given counter rows of two users over two days, out of order
    rows = [
        CounterRow(
            user_id="u1",
            day="2025-01-02",
            annotations=2,
            lead_time_s=10.0,
            last_at="2025-01-02T10:00:00.000Z",
            histogram=_histogram([4, 6]),
        ),
        CounterRow(
            user_id="u2",
            day="2025-01-01",
            annotations=1,
            lead_time_s=1.0,
            last_at="2025-01-01T09:00:00.000Z",
            histogram=_histogram([1]),
        ),
        CounterRow(
            user_id="u1",
            day="2025-01-01",
            annotations=1,
            lead_time_s=5.0,
            last_at="2025-01-01T08:00:00.000Z",
            histogram=_histogram([5]),
        ),
    ]
    # When they are summarized
    summary = activity.summarize("p1", date(2025, 1, 1), date(2025, 1, 2), rows)
    # Then each user has their days in order, totals and a median
    assert (summary.active_users, summary.annotations) == (2, 4)
    assert [u.user_id for u in summary.users] == ["u1", "u2"]
    u1 = summary.users[0]
    assert [d.day for d in u1.days] == ["2025-01-01", "2025-01-02"]
    assert (u1.annotations, u1.lead_time_s_total, u1.last_at) == (3, 15.0, "2025-01-02T10:00:00.000Z")
    assert u1.lead_time_s_median is not None and 4 <= u1.lead_time_s_median < 8
