"""Sharded exports: every task id falls in exactly one shard, and shard lines round-trip."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from serval import ids, keys
from serval.domain.exports import ExportFailure, ExportRecord, shards
from serval.domain.jobs import JobMessage, JobStep
from serval.domain.media import MediaType
from serval.domain.models import Annotation, Task, TextRef

RNG = random.Random(7)
STABLE = [ids.task_id("p_1", None, ("imp", i)) for i in range(5_000)]
ODD = [ids.new_id("t") for _ in range(200)] + [
    "t-00042",
    "t_",
    "",
    "t_~",
    "zz",
    "t_00000000000000000000000000",
]


def _in(task_id: str, bounds: tuple[str, str | None]) -> bool:
    lo, hi = bounds
    return lo <= task_id and (hi is None or task_id < hi)


@pytest.mark.parametrize("count", [1, 2, 3, 6, 7, 64, 999, shards.MAX_SHARDS])
def test_every_task_id_is_in_exactly_one_shard(count: int) -> None:
    # Given K shards, stable (hashed) ids, time-ordered new_id ids and ids of other shapes
    ranges = [shards.bounds(n, count) for n in range(count)]
    for task_id in STABLE + ODD + [shards.boundaries(count)[0] if count > 1 else "t_1"]:
        # Then exactly one shard's range holds it, the one shard_of names
        holders = [n for n, r in enumerate(ranges) if _in(task_id, r)]
        assert holders == [shards.shard_of(task_id, count)]


def test_the_ranges_are_contiguous_and_cover_everything() -> None:
    count = 13
    ranges = [shards.bounds(n, count) for n in range(count)]
    assert ranges[0][0] == "" and ranges[-1][1] is None
    assert all(ranges[n][1] == ranges[n + 1][0] for n in range(count - 1))
    assert list(shards.boundaries(count)) == sorted(shards.boundaries(count))


def test_stable_ids_spread_evenly() -> None:
    count = 5
    sizes = [0] * count
    for task_id in STABLE:
        sizes[shards.shard_of(task_id, count)] += 1
    assert all(abs(size - len(STABLE) / count) < 0.1 * len(STABLE) / count for size in sizes)


def test_annotation_keys_of_a_shard_fall_in_the_same_range() -> None:
    # The reader applies a shard's bounds to ANNOTATION#<task id>#<annotation id> keys too
    count = 9
    prefix = keys.annotation_sk_prefix("")[: -len("#")]
    for task_id in STABLE[:2_000] + ODD:
        sk = keys.annotation_sk(task_id, ids.new_id("a"))
        shard = shards.shard_of(task_id, count)
        lo, hi = shards.bounds(shard, count)
        assert prefix + lo <= sk and (hi is None or sk < prefix + hi)


def test_shard_count_follows_the_task_count() -> None:
    assert shards.shard_count(0, 20_000) == 1
    assert shards.shard_count(20_000, 20_000) == 1
    assert shards.shard_count(20_001, 20_000) == 2
    assert shards.shard_count(100_000, 20_000) == 5
    assert shards.shard_count(10**9, 100) == shards.MAX_SHARDS
    with pytest.raises(ValueError):
        shards.bounds(3, 3)


def test_shard_lines_round_trip() -> None:
    task = Task(
        task_id="t_1",
        project_id="p_1",
        data={"text": TextRef(text='Grüße "aus"\nZürich')},
        media_type=MediaType.TEXT,
        metadata={"score": 0.1, "n": 3, "nested": {"a": [1, None]}},
        tags=["x"],
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )
    annotation = Annotation.model_validate(
        {
            "annotation_id": "a_1",
            "task_id": "t_1",
            "project_id": "p_1",
            "author": "u",
            "results": [{"control": "shape", "type": "classification", "labels": ["circle"]}],
            "lead_time_s": 1.5,
            "label_config_version": 2,
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    for item in (
        ExportRecord(task, annotation, (640, 480)),
        ExportRecord(task, None),
        ExportFailure("t_2", "image size unknown"),
    ):
        line = shards.encode_line(item)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert shards.decode_line(line.decode().rstrip("\n")) == item


def test_shard_messages_name_their_shard() -> None:
    message = JobMessage(job_id="j", project_id="p", step=JobStep.SHARD, shard=2, shards=3)
    assert JobMessage.model_validate_json(message.model_dump_json()) == message
    assert JobMessage(job_id="j", project_id="p").model_dump_json(exclude_defaults=True) == (
        '{"job_id":"j","project_id":"p"}'
    )
    for bad in (
        {"step": "shard"},
        {"step": "shard", "shard": 3, "shards": 3},
        {"step": "assemble", "shard": 0, "shards": 2},
    ):
        with pytest.raises(ValidationError):
            JobMessage.model_validate({"job_id": "j", "project_id": "p", **bad})
