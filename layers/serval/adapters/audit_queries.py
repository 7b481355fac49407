"""Reading the audit table: one Query plan per filter set, never a scan.

| filter given   | Query                                   | key condition          | filter expression        |
|----------------|-----------------------------------------|------------------------|--------------------------|
| actor          | GSI1 ``ACTOR#<user>``                   | GSI1SK in time range   | scope PK, target, action |
| target (only)  | GSI2 ``TARGET#<type>#<id>``             | GSI2SK in time range   | scope PK, action         |
| neither        | table ``PROJECT#<pid>`` or ``GLOBAL``   | SK in time range       | action                   |

Every sort key is ``<time>#<audit id>``, so a time range is a key condition:
``since`` is inclusive (``<since>#…`` sorts after ``<since>``) and ``until`` exclusive.

Cursors are the opaque ``LastEvaluatedKey``. On an index, DynamoDB's key may name a
record the filter dropped, from another scope; such a key is rewritten onto the caller's
own partition before it is encoded (the index sort key alone positions the Query, since
it is unique), so a cursor never names another project. A cursor made for another
listing is refused with 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from serval import keys
from serval.adapters import audit, clients, dynamo
from serval.domain.audit import AuditRecord
from serval.errors import InvalidCursor
from serval.settings import settings

MAX_PAGES = 10  # DynamoDB pages one API page may read before it returns a cursor
MIN_READ = 100  # items evaluated per DynamoDB page at least (filters drop some)
EXPORT_READ = 500


@dataclass(frozen=True)
class AuditFilter:
    """What to read. ``partition`` is the scope (``PROJECT#<pid>`` or ``GLOBAL``); ``None``: any
    scope, allowed only with an actor or a target (a user's own history)."""

    partition: str | None
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: str | None = None  # inclusive, ISO-8601 UTC as records store it
    until: str | None = None  # exclusive
    descending: bool = True


@dataclass(frozen=True)
class _Plan:
    query: dict[str, Any]
    partition_attr: str
    partition: str
    sort_attr: str
    index: str | None


def plan(f: AuditFilter) -> _Plan:
    """The Query for a filter set (see the module's table)."""
    names: dict[str, str] = {"#entity": keys.ENTITY}
    values: dict[str, Any] = {":entity": {"S": "audit"}}
    filters = ["#entity = :entity"]
    index: str | None
    if f.actor_id:
        index, p_attr, s_attr = keys.GSI1, keys.GSI1PK, keys.GSI1SK
        partition = keys.audit_actor_pk(f.actor_id)
    elif f.target_type and f.target_id:
        index, p_attr, s_attr = keys.GSI2, keys.GSI2PK, keys.GSI2SK
        partition = keys.audit_target_pk(f.target_type, f.target_id)
    elif f.partition:
        index, p_attr, s_attr = None, keys.PK, keys.SK
        partition = f.partition
    else:
        raise ValueError("a query of every scope needs an actor or a target")
    if index and f.partition:
        names["#scope"] = keys.PK
        values[":scope"] = {"S": f.partition}
        filters.append("#scope = :scope")
    if f.actor_id and f.target_type and f.target_id:
        names |= {"#tt": "target_type", "#tid": "target_id"}
        values |= {":tt": {"S": f.target_type}, ":tid": {"S": f.target_id}}
        filters.append("#tt = :tt AND #tid = :tid")
    if f.action:
        names["#action"] = "action"
        values[":action"] = {"S": f.action}
        filters.append("#action = :action")
    names["#p"] = p_attr
    values[":p"] = {"S": partition}
    condition = "#p = :p"
    if f.since or f.until:
        names["#s"] = s_attr
    if f.since and f.until:
        condition += " AND #s BETWEEN :since AND :until"
        values |= {":since": {"S": f.since}, ":until": {"S": f.until}}
    elif f.since:
        condition += " AND #s >= :since"
        values[":since"] = {"S": f.since}
    elif f.until:
        condition += " AND #s < :until"
        values[":until"] = {"S": f.until}
    query: dict[str, Any] = {
        "TableName": settings().AUDIT_TABLE,
        "KeyConditionExpression": condition,
        "FilterExpression": " AND ".join(filters),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": not f.descending,
    }
    if index:
        query["IndexName"] = index
    return _Plan(query, p_attr, partition, s_attr, index)


def _key_of(p: _Plan, raw: dict[str, Any]) -> dict[str, Any]:
    names = (keys.PK, keys.SK) + ((p.partition_attr, p.sort_attr) if p.index else ())
    return {name: raw[name] for name in names}


def _own_key(p: _Plan, f: AuditFilter, key: dict[str, Any] | None) -> dict[str, Any] | None:
    """A LastEvaluatedKey that names only the caller's own partition (see the module doc)."""
    if not key or not p.index or not f.partition or key.get(keys.PK, {}).get("S") == f.partition:
        return key
    return key | {keys.PK: {"S": f.partition}, keys.SK: key[p.sort_attr]}


def _start(p: _Plan, f: AuditFilter, cursor: str | None) -> dict[str, Any] | None:
    start = dynamo.decode_cursor(cursor, p.partition_attr, p.partition)
    if start is None:
        return None
    position = start[p.sort_attr]["S"]
    outside = (f.since is not None and position < f.since) or (f.until is not None and position > f.until)
    if (f.partition and start[keys.PK]["S"] != f.partition) or outside:
        raise InvalidCursor("the cursor does not belong to this listing", details={"cursor": cursor})
    return start


def page(f: AuditFilter, limit: int, cursor: str | None) -> tuple[list[AuditRecord], str | None]:
    """One page of records, newest first unless ascending. Reads at most ``MAX_PAGES`` Query pages."""
    p = plan(f)
    start = _start(p, f, cursor)
    found: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        kwargs = p.query | {"Limit": max(limit, MIN_READ)}
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = clients.dynamodb().query(**kwargs)
        items: list[dict[str, Any]] = response.get("Items", [])
        last_key: dict[str, Any] | None = response.get("LastEvaluatedKey")
        for position, raw in enumerate(items):
            found.append(raw)
            if len(found) == limit:
                more = position < len(items) - 1 or last_key is not None
                next_key = _key_of(p, raw) if more else None
                return _records(found), dynamo.encode_cursor(next_key)
        start = last_key
        if not start:
            break
    return _records(found), dynamo.encode_cursor(_own_key(p, f, start))


def iter_raw(f: AuditFilter, read_size: int = EXPORT_READ) -> Iterator[dict[str, Any]]:
    """Every matching low-level item, one Query page in memory at a time (for exports)."""
    p = plan(f)
    start: dict[str, Any] | None = None
    while True:
        kwargs = p.query | {"Limit": read_size}
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = clients.dynamodb().query(**kwargs)
        yield from response.get("Items", [])
        start = response.get("LastEvaluatedKey")
        if not start:
            return


def _records(raws: list[dict[str, Any]]) -> list[AuditRecord]:
    return [audit.record_from_item(raw) for raw in raws]
