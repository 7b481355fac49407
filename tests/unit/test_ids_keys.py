"""Identifiers (time-ordered and stable) and DynamoDB key helpers."""

from __future__ import annotations

import re
import time

import pytest

from serval import keys
from serval.ids import new_id, stable_id

ID_BODY = re.compile(r"[0-9abcdefghjkmnpqrstvwxyz]{26}")


def test_new_id_has_prefix_and_a_26_char_crockford_body() -> None:
    value = new_id("t")
    prefix, _, body = value.partition("_")
    assert prefix == "t"
    assert ID_BODY.fullmatch(body)


def test_new_ids_are_unique() -> None:
    assert len({new_id("t") for _ in range(2_000)}) == 2_000


def test_new_ids_sort_by_creation_time_across_milliseconds() -> None:
    # Given ids created at least a millisecond apart
    created = []
    for _ in range(6):
        created.append(new_id("task"))
        time.sleep(0.0015)

    # Then sorting them gives creation order
    assert sorted(created) == created


def test_stable_id_is_deterministic() -> None:
    assert stable_id("imp", "bucket", "key", 3) == stable_id("imp", "bucket", "key", 3)


def test_stable_id_has_prefix_and_body() -> None:
    prefix, _, body = stable_id("imp", "x").partition("_")
    assert prefix == "imp"
    assert ID_BODY.fullmatch(body)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("b", "k", 1), ("b", "k", 2)),
        (("b", "k", 1), ("b", "k2", 1)),
        (("b", "k"), ("k", "b")),  # order matters
        (("ab",), ("a", "b")),  # joining does not merge parts
        (("x",), ("x", "")),
    ],
)
def test_stable_id_differs_per_part(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    assert stable_id("t", *a) != stable_id("t", *b)


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("item_id", ["", "t", "task_01hx", "ünïcode", stable_id("t", 1), "x" * 500])
def test_counter_shard_is_in_range_and_deterministic(item_id: str) -> None:
    shard = keys.counter_shard(item_id)
    assert 0 <= shard < keys.COUNTER_SHARDS
    assert keys.counter_shard(item_id) == shard


def test_counter_shards_spread_over_every_shard() -> None:
    # Given many distinct ids / Then every shard receives some of them
    shards = {keys.counter_shard(stable_id("t", i)) for i in range(200)}
    assert shards == set(range(keys.COUNTER_SHARDS))


def test_counter_sort_keys_are_distinct_and_fixed_width() -> None:
    sks = [keys.counter_sk(s) for s in range(keys.COUNTER_SHARDS)]
    assert len(set(sks)) == keys.COUNTER_SHARDS
    assert all(sk.startswith(keys.COUNTER_SK_PREFIX) for sk in sks)
    assert sks == sorted(sks)


def test_time_sort_key_orders_by_time_then_id() -> None:
    # Given items created at different times, and two at the same time
    k_early = keys.time_sort_key("2024-01-01T00:00:00.000Z", "t_zzz")
    k_late_a = keys.time_sort_key("2024-01-01T00:00:00.001Z", "t_aaa")
    k_late_b = keys.time_sort_key("2024-01-01T00:00:00.001Z", "t_bbb")
    k_next_day = keys.time_sort_key("2024-01-02T00:00:00.000Z", "t_000")

    # Then lexical order is time order, with the id breaking ties
    assert sorted([k_next_day, k_late_b, k_early, k_late_a]) == [k_early, k_late_a, k_late_b, k_next_day]


def test_tag_keys_group_under_their_prefix_only() -> None:
    # Given tags where one is a prefix of another
    sk = keys.tag_sk("cat", "t_1")
    other = keys.tag_sk("catalog", "t_1")

    # Then a query on one tag's prefix does not match the other tag
    assert sk.startswith(keys.tag_sk_prefix("cat"))
    assert not other.startswith(keys.tag_sk_prefix("cat"))


def test_annotation_keys_group_under_their_task_only() -> None:
    assert keys.annotation_sk("t_1", "a_1").startswith(keys.annotation_sk_prefix("t_1"))
    assert not keys.annotation_sk("t_10", "a_1").startswith(keys.annotation_sk_prefix("t_1"))


def test_partition_keys_are_distinct_per_kind() -> None:
    pid = "p_1"
    partitions = {
        keys.project_pk(pid),
        keys.tasks_gsi2pk(pid),
        keys.imports_gsi2pk(pid),
        keys.status_gsi1pk(pid, "new"),
        keys.status_gsi1pk(pid, "queued"),
    }
    assert len(partitions) == 5


def test_audit_partition_is_project_or_global() -> None:
    assert keys.audit_pk("p_1") == keys.project_pk("p_1")
    assert keys.audit_pk(None) == keys.GLOBAL_SCOPE
