"""Planning a manifest's byte ranges, and numbering its lines across them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serval.domain.byte_ranges import (
    MAX_RANGES,
    ByteRange,
    RangeMessage,
    at_boundaries,
    first_lines,
    nominal,
    range_bytes,
)


def test_nominal_ranges_cover_the_file_end_to_end() -> None:
    # Given a 250-byte file and ranges of 100 / Then three ranges, the last one shorter
    assert nominal(250, 100) == [ByteRange(0, 0, 100), ByteRange(1, 100, 200), ByteRange(2, 200, 250)]
    # And an exact multiple has no empty range, and an empty file has one empty range
    assert [r.end for r in nominal(200, 100)] == [100, 200]
    assert nominal(0, 100) == [ByteRange(0, 0, 0)]


def test_a_huge_manifest_gets_larger_ranges_so_it_needs_at_most_max_ranges() -> None:
    size = MAX_RANGES * 1_000 + 1
    assert range_bytes(size, 10) == 1_001
    assert len(nominal(size, 10)) <= MAX_RANGES
    assert len(nominal(MAX_RANGES * 1_000, 10)) == MAX_RANGES
    assert range_bytes(500, 100) == 100


def test_ranges_at_boundaries_start_only_where_allowed_and_are_at_least_one_range_long() -> None:
    # Given record starts at 30, 90, 95, 180 and 260 in a 300-byte CSV, and ranges of 100
    ranges = at_boundaries(300, 100, [30, 90, 95, 180, 260])
    # Then a range ends at the first record start at least 100 bytes past its start
    assert ranges == [ByteRange(0, 0, 180), ByteRange(1, 180, 300)]
    # And a record that covers several range sizes gives fewer, longer ranges
    assert at_boundaries(1_000, 100, [950]) == [ByteRange(0, 0, 950), ByteRange(1, 950, 1_000)]
    assert at_boundaries(1_000, 100, []) == [ByteRange(0, 0, 1_000)]


def test_first_line_numbers_follow_the_lines_of_every_range_before() -> None:
    # Given ranges holding 4, 0, 3 and 2 lines / Then their first lines are 1, 5, 5 and 8
    assert first_lines([4, 0, 3, 2]) == [1, 5, 5, 8]


def test_a_range_message_refuses_fields_it_does_not_know_and_impossible_indexes() -> None:
    base = {
        "project_id": "p",
        "import_id": "imp",
        "bucket": "b",
        "key": "projects/p/m.jsonl",
        "etag": "e",
        "size": 10,
        "index": 0,
        "count": 1,
        "start": 0,
        "end": 10,
    }
    assert RangeMessage.model_validate(base).byte_range == ByteRange(0, 0, 10)
    for bad in ({"index": MAX_RANGES}, {"count": 0}, {"surprise": 1}, {"kind": "other"}):
        with pytest.raises(ValidationError):
            RangeMessage.model_validate(base | bad)
