"""Sorted per-partition indexes over moto's DynamoDB tables, so a Query costs what it costs in AWS.

moto's ``Table.query`` walks ``all_items()``, which sorts the whole table on every
call: a Query's cost grows with the table, not with the page. Here every table
gets a :class:`TableIndex`, kept next to moto's own storage (``Table.items`` is
not changed, so every moto code path that reads it keeps working):

- the base table: per partition key, a sorted list of the sort keys;
- every GSI: per index partition key, a sorted list of
  (index sort key, table partition key, table sort key), the order moto uses.

A Query then finds its partition, bisects to the key condition (``=``, ``<``,
``<=``, ``>``, ``>=``, ``BETWEEN``, ``begins_with``) and to the
``ExclusiveStartKey``, walks in either direction and stops after ``Limit``
items. The page is then filtered and projected by moto's own code.

The index is built lazily on a table's first Query and kept current by
:func:`sync_key`, which the patched write paths call with every key they touch
(put, delete, update in place, transaction rollback). Every write path of moto
goes through those. A table whose storage was replaced behind our back
(backup restore, another patch generation) gets a fresh index.

Semantics are moto's, except one deliberate difference that matches DynamoDB:
when a page stops because it reached ``Limit``, ``LastEvaluatedKey`` is returned
even if no further item matches (moto omits it when the partition has no next item).

Shapes this index does not cover (tables without a sort key, LSIs, GSIs
without a sort key, multi-attribute keys, the legacy ``QueryFilter``) return
``None`` from :func:`indexed_query`, and the caller falls back to moto's query.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, GlobalSecondaryIndex, Table
from sortedcontainers import SortedList

INDEX_ATTRIBUTE = "_serval_query_index"


class _Top:
    """Sorts after every value: ``(v, TOP)`` is the upper bound of all tuples starting with ``v``."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return other is self

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __ge__(self, other: object) -> bool:
        return True


TOP = _Top()

# Entries. Base table: (sort cast, sort key). GSI: (index sort cast, table pk cast, table sk cast,
# table pk, table sk). The trailing DynamoType keys are never reached by a comparison: the leading
# casts are unique per item (moto compares keys by their cast value too).
Entry = tuple[Any, ...]


@dataclass
class _Gsi:
    hash_attr: str
    range_attr: str
    partitions: dict[DynamoType, SortedList] = field(default_factory=dict)
    entries: dict[tuple[DynamoType, DynamoType], tuple[DynamoType, Entry]] = field(default_factory=dict)

    def entry_for(self, item: Item) -> tuple[DynamoType, Entry] | None:
        gsi_hash = item.attrs.get(self.hash_attr)
        gsi_range = item.attrs.get(self.range_attr)
        if gsi_hash is None or gsi_range is None:  # sparse index: the item is not in it
            return None
        assert item.range_key is not None
        entry = (
            gsi_range.cast_value,
            item.hash_key.cast_value,
            item.range_key.cast_value,
            item.hash_key,
            item.range_key,
        )
        return gsi_hash, entry

    def sync(self, key: tuple[DynamoType, DynamoType], item: Item | None) -> None:
        new = self.entry_for(item) if item is not None else None
        old = self.entries.get(key)
        if old == new:
            return
        if old is not None:
            _discard(self.partitions, *old)
            del self.entries[key]
        if new is not None:
            self.partitions.setdefault(new[0], SortedList()).add(new[1])
            self.entries[key] = new


def _discard(partitions: dict[DynamoType, SortedList], partition: DynamoType, entry: Entry) -> None:
    entries = partitions.get(partition)
    if entries is None:
        return
    entries.discard(entry)
    if not entries:
        del partitions[partition]


@dataclass
class TableIndex:
    generation: int
    items: Any  # the ``Table.items`` mapping this index describes
    base: dict[DynamoType, SortedList] = field(default_factory=dict)
    gsis: dict[str, _Gsi] = field(default_factory=dict)

    def sync(self, table: Table, hash_key: DynamoType, range_key: DynamoType) -> None:
        item = table.items.get(hash_key, {}).get(range_key)
        entry = (range_key.cast_value, range_key)
        if item is None:
            _discard(self.base, hash_key, entry)
        else:
            entries = self.base.setdefault(hash_key, SortedList())
            if entry not in entries:
                entries.add(entry)
        for gsi in self.gsis.values():
            gsi.sync((hash_key, range_key), item)


def _gsi_keys(index: GlobalSecondaryIndex) -> tuple[str, str] | None:
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) != 1:
        return None
    return hashes[0], ranges[0]


def _build(table: Table, generation: int) -> TableIndex:
    index = TableIndex(generation=generation, items=table.items)
    for hash_key, partition in table.items.items():
        if partition:
            index.base[hash_key] = SortedList((r.cast_value, r) for r in partition)
    for gsi_spec in table.global_indexes:
        keys = _gsi_keys(gsi_spec)
        if keys is None:
            continue
        gsi = _Gsi(*keys)
        grouped: dict[DynamoType, list[Entry]] = {}
        for hash_key, partition in table.items.items():
            for range_key, item in partition.items():
                located = gsi.entry_for(item)
                if located is not None:
                    grouped.setdefault(located[0], []).append(located[1])
                    gsi.entries[(hash_key, range_key)] = located
        gsi.partitions = {k: SortedList(v) for k, v in grouped.items()}
        index.gsis[gsi_spec.name] = gsi
    return index


def _gsi_signature(table: Table) -> dict[str, tuple[str, str] | None]:
    return {g.name: _gsi_keys(g) for g in table.global_indexes}


def _current(table: Table, generation: int) -> TableIndex | None:
    index: TableIndex | None = table.__dict__.get(INDEX_ATTRIBUTE)
    if index is None or index.generation != generation or index.items is not table.items:
        return None
    wanted = {name: keys for name, keys in _gsi_signature(table).items() if keys is not None}
    if {name: (g.hash_attr, g.range_attr) for name, g in index.gsis.items()} != wanted:
        return None
    return index


def index_for(table: Table, generation: int) -> TableIndex:
    """The table's index, built now if missing or stale."""
    index = _current(table, generation)
    if index is None:
        index = _build(table, generation)
        table.__dict__[INDEX_ATTRIBUTE] = index
    return index


def sync_key(table: Table, generation: int, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    """Bring the index in line with whatever item (or none) is now stored at this key."""
    if range_key is None or table.range_key_attr is None:
        return
    index = _current(table, generation)
    if index is not None:
        index.sync(table, hash_key, range_key)


# --------------------------------------------------------------------------- query


def _successor(prefix: Any) -> Any | None:
    """The smallest value greater than every value starting with ``prefix``; None if there is none."""
    if isinstance(prefix, str) and prefix and ord(prefix[-1]) < 0x10FFFF:
        return prefix[:-1] + chr(ord(prefix[-1]) + 1)
    if isinstance(prefix, bytes) and prefix and prefix[-1] < 0xFF:
        return prefix[:-1] + bytes([prefix[-1] + 1])
    return None


def _window(entries: SortedList, comparison: str | None, values: list[DynamoType]) -> tuple[int, int] | None:
    """The [start, stop) positions of the entries whose first element meets the key condition."""
    size = len(entries)
    if comparison is None:
        return 0, size
    casts = [v.cast_value for v in values]
    low, high = (casts[0],), (casts[0], TOP)
    if comparison == "=":
        return entries.bisect_left(low), entries.bisect_right(high)
    if comparison == "<":
        return 0, entries.bisect_left(low)
    if comparison == "<=":
        return 0, entries.bisect_right(high)
    if comparison == ">":
        return entries.bisect_right(high), size
    if comparison == ">=":
        return entries.bisect_left(low), size
    if comparison == "BETWEEN":
        return entries.bisect_left(low), entries.bisect_right((casts[1], TOP))
    if comparison == "BEGINS_WITH":
        successor = _successor(casts[0])
        if successor is None:
            return None
        return entries.bisect_left(low), entries.bisect_left((successor,))
    return None


@dataclass(frozen=True)
class _Target:
    """Where a Query reads: the sorted entries of one partition, and the order they are sorted in."""

    entries: SortedList | None
    hash_value: Any  # the partition key's cast value, the first element of moto's sort order
    key_attrs: tuple[str, ...]  # the key attributes in moto's sort order, partition key first


def _target(table: Table, generation: int, hash_key: DynamoType, index_name: str | None) -> _Target | None:
    index = index_for(table, generation)
    assert table.range_key_attr is not None
    if index_name is None:
        return _Target(
            index.base.get(hash_key), hash_key.cast_value, (table.hash_key_attr, table.range_key_attr)
        )
    gsi = index.gsis.get(index_name)
    if gsi is None:
        return None
    order = (gsi.hash_attr, gsi.range_attr, table.hash_key_attr, table.range_key_attr)
    return _Target(gsi.partitions.get(hash_key), hash_key.cast_value, order)


def _start_bound(target: _Target, esk: dict[str, Any], forward: bool) -> tuple[int, int] | None:
    """Restrict the walk to the entries after (forward) or before (backward) the start key."""
    assert target.entries is not None
    if any(name not in esk for name in target.key_attrs):
        return None
    casts = [DynamoType(esk[name]).cast_value for name in target.key_attrs]
    size = len(target.entries)
    if casts[0] != target.hash_value:
        # A start key from another partition: moto's order skips either nothing or everything.
        walks_away_from_it = (casts[0] < target.hash_value) == forward
        return (0, size) if walks_away_from_it else (0, 0)
    key = tuple(casts[1:])
    if forward:
        return target.entries.bisect_right((*key, TOP)), size
    return 0, target.entries.bisect_left(key)


def indexed_query(
    table: Table,
    generation: int,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None] | None:
    """``Table.query`` from the index, or None when the query's shape is not covered (see module doc)."""
    if (
        filter_kwargs
        or hash_key is None
        or table.range_key_attr is None
        or len(hash_key_conditions or ()) > 1
        or len(range_key_conditions or ()) > 1
        or (index_name is not None and (consistent_read or index_name not in _gsi_signature(table)))
    ):
        return None
    target = _target(table, generation, hash_key, index_name)
    if target is None:
        return None
    if target.entries is None:  # an empty partition
        return [], 0, None
    try:
        window = _window(target.entries, range_comparison, range_objs)
        if window is not None and exclusive_start_key is not None:
            bound = _start_bound(target, exclusive_start_key, scan_index_forward)
            window = None if bound is None else (max(window[0], bound[0]), min(window[1], bound[1]))
    except TypeError:  # key values of mixed types: leave it to moto's own error handling
        return None
    if window is None:
        return None
    start, stop = window[0], max(window)  # an empty window may come out inverted

    def items() -> Iterator[Item]:
        for entry in target.entries.islice(start, stop, reverse=not scan_index_forward):  # type: ignore[union-attr]
            if index_name is None:
                yield table.items[hash_key][entry[-1]]
            else:
                yield table.items[entry[-2]][entry[-1]]

    results: list[Item] = []
    result_size = 0
    last_evaluated_key = None
    for item in items():
        item_size = item.size()
        if result_size + item_size > RESULT_SIZE_LIMIT and results:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            break
        results.append(item)
        result_size += item_size
        if limit is not None and len(results) == limit:
            last_evaluated_key = table._get_last_evaluated_key(item, index_name)
            break
    scanned_count = len(results)

    # From here on exactly as moto: copy, project to the index, filter, project the expression.
    results = copy.deepcopy(results)
    if index_name:
        gsi = table.get_index(index_name)
        results = [gsi.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key
