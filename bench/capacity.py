"""DynamoDB request units of the calls :mod:`bench.metering` sees: what on-demand billing charges.

An estimate from each call's parameters and response and from the size of every item at the end
of the run (moto reports no consumed capacity), by DynamoDB's published rules:

- a write costs 1 WRU per KB of the item (rounded up, at least 1); a transactional one 2;
- each GSI the item is in costs a write of the item too (every index here projects ALL), and an
  update that sets or removes an index's key costs two there (the old entry goes, a new one comes);
- a read costs 1 RRU per 4 KB read (a Query: of all the items it read, rounded up once), half of
  that when eventually consistent, twice when transactional; a ConditionCheck is a
  transactional read of its item.

Approximations: an updated item's size is its size at the end of the run (DynamoDB charges the
larger of before and after); an item that no longer exists costs 1 KB.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from serval import keys
from serval.adapters.dynamo import item_size

INDEXES = ((keys.GSI1PK, keys.GSI1SK), (keys.GSI2PK, keys.GSI2SK), (keys.GSI3PK, keys.GSI3SK))
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
DEFAULT_ITEM_BYTES = 1024


@dataclass(frozen=True)
class Shape:
    """An item as it was at the end of the run: its size and the GSIs it is in."""

    size: int
    indexes: frozenset[str]  # the GSI partition-key attributes it has


def shape_of(item: Mapping[str, Any]) -> Shape:
    return Shape(item_size(item), frozenset(pk for pk, _ in INDEXES if pk in item))


@dataclass(frozen=True)
class _Write:
    caller: str
    table: str
    key: tuple[str, str]
    kind: str  # put | update | delete
    transactional: bool
    item: Shape | None = None  # a put's own item
    changed_indexes: frozenset[str] = frozenset()  # an update's index keys set or removed


@dataclass(frozen=True)
class _Read:
    caller: str
    keys: tuple[tuple[str, str], ...]
    consistent: bool
    transactional: bool
    one_sum: bool  # a Query: its items' sizes are summed, then rounded up once


def _key(attrs: Mapping[str, Any]) -> tuple[str, str]:
    return (str(attrs.get(keys.PK, {}).get("S", "")), str(attrs.get(keys.SK, {}).get("S", "")))


_NAME = re.compile(r"#\w+|\b[A-Za-z_]\w*\b")


def _changed_indexes(body: Mapping[str, Any]) -> frozenset[str]:
    """The GSIs (by partition-key attribute) whose key attributes an update sets or removes."""
    names = body.get("ExpressionAttributeNames") or {}
    written = {names.get(token, token) for token in _NAME.findall(str(body.get("UpdateExpression", "")))}
    return frozenset(pk for pk, sk in INDEXES if pk in written or sk in written)


@dataclass
class CapacityLog:
    """Collects the DynamoDB writes and reads of a run (an observer for :func:`bench.metering.metered`)."""

    writes: list[_Write] = field(default_factory=list)
    reads: list[_Read] = field(default_factory=list)

    def observe(
        self, caller: str, service: str, operation: str, params: dict[str, Any], response: Any
    ) -> None:
        if service != "dynamodb":
            return
        table = str(params.get("TableName", ""))
        if operation == "PutItem":
            self._put(caller, table, params["Item"], False)
        elif operation == "UpdateItem":
            self._update(caller, table, params, False)
        elif operation == "DeleteItem":
            self.writes.append(_Write(caller, table, _key(params["Key"]), "delete", False))
        elif operation == "BatchWriteItem":
            for name, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        self._put(caller, name, request["PutRequest"]["Item"], False)
                    else:
                        key = _key(request["DeleteRequest"]["Key"])
                        self.writes.append(_Write(caller, name, key, "delete", False))
        elif operation == "TransactWriteItems":
            for action in params.get("TransactItems", []):
                (kind, body), *_ = action.items()
                name = str(body.get("TableName", ""))
                if kind == "Put":
                    self._put(caller, name, body["Item"], True)
                elif kind == "Update":
                    self._update(caller, name, body, True)
                elif kind == "Delete":
                    self.writes.append(_Write(caller, name, _key(body["Key"]), "delete", True))
                else:
                    self.reads.append(_Read(caller, (_key(body["Key"]),), True, True, False))
        elif operation == "GetItem":
            consistent = bool(params.get("ConsistentRead"))
            self.reads.append(_Read(caller, (_key(params["Key"]),), consistent, False, False))
        elif operation == "BatchGetItem":
            for request in params.get("RequestItems", {}).values():
                consistent = bool(request.get("ConsistentRead"))
                for key in request.get("Keys", []):
                    self.reads.append(_Read(caller, (_key(key),), consistent, False, False))
        elif operation == "Query":
            found = tuple(_key(i) for i in (response or {}).get("Items", []))
            self.reads.append(_Read(caller, found, bool(params.get("ConsistentRead")), False, True))

    def _put(self, caller: str, table: str, item: Mapping[str, Any], transactional: bool) -> None:
        self.writes.append(_Write(caller, table, _key(item), "put", transactional, shape_of(item)))

    def _update(self, caller: str, table: str, body: Mapping[str, Any], transactional: bool) -> None:
        changed = _changed_indexes(body)
        self.writes.append(_Write(caller, table, _key(body["Key"]), "update", transactional, None, changed))

    def units(self, final: Mapping[tuple[str, str], Shape]) -> Units:
        """The run's request units, given every item's shape at its end (by (PK, SK))."""
        seen: dict[tuple[str, str], Shape] = {}
        result = Units()
        for write in self.writes:
            shape = (
                write.item
                or final.get(write.key)
                or seen.get(write.key)
                or Shape(DEFAULT_ITEM_BYTES, frozenset())
            )
            if write.item is not None:
                seen[write.key] = write.item
            units = max(1, math.ceil(shape.size / WRITE_UNIT_BYTES))
            base = units * (2 if write.transactional else 1)
            extra = len(shape.indexes | write.changed_indexes) * units + len(write.changed_indexes) * units
            if write.kind == "put":
                extra = len(shape.indexes) * units
            result.write[write.caller] += base + extra
            result.write_by_table[write.table] += base + extra
            result.write_by_item[write.key] += base
            result.index_writes[write.caller] += extra
        for read in self.reads:
            sizes = [
                (final.get(k) or seen.get(k) or Shape(DEFAULT_ITEM_BYTES, frozenset())).size
                for k in read.keys
            ]
            blocks = (
                max(1, math.ceil(sum(sizes) / READ_UNIT_BYTES))
                if read.one_sum
                else sum(max(1, math.ceil(s / READ_UNIT_BYTES)) for s in sizes) or 1
            )
            factor = 2.0 if read.transactional else 1.0 if read.consistent else 0.5
            result.read[read.caller] += blocks * factor
        return result


def _floats() -> defaultdict[str, float]:
    return defaultdict(float)


@dataclass
class Units:
    write: defaultdict[str, float] = field(default_factory=_floats)  # WRU by calling function
    read: defaultdict[str, float] = field(default_factory=_floats)  # RRU by calling function
    write_by_table: defaultdict[str, float] = field(default_factory=_floats)  # WRU by table
    write_by_item: Counter[tuple[str, str]] = field(default_factory=Counter)  # base-table WRU by item
    index_writes: defaultdict[str, float] = field(default_factory=_floats)  # the GSI part of ``write``

    def total_write(self, callers: Iterable[str]) -> float:
        return float(sum(self.write[c] for c in callers))

    def total_read(self, callers: Iterable[str]) -> float:
        return float(sum(self.read[c] for c in callers))
