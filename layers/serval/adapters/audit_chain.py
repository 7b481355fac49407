"""The audit hash chain in DynamoDB: chain heads, linking transactions, chain-order reads.

A scope's head is one item of the audit table (``PK=CHAIN#<scope>``, ``SK=HEAD``,
``entity=chain_head``) holding the last linked ``seq`` and ``hash``. Linking a record is
one TransactWriteItems: set the record's chain fields (only if it has none yet) and move
the head from the seq the chainer read to the next one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from serval import keys
from serval.adapters import clients, dynamo
from serval.domain.models import utcnow
from serval.settings import settings

HEAD_ENTITY = "chain_head"


@dataclass(frozen=True)
class HeadState:
    scope: str
    seq: int
    hash: str
    updated_at: str


class LinkResult(StrEnum):
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"  # a redelivered record: linked before
    GONE = "gone"  # the record was deleted before it could be linked


class HeadMoved(Exception):
    """Another chainer moved the scope's head since it was read: read it again."""


def _head_key(scope: str) -> dict[str, str]:
    return dynamo.item_key(keys.chain_pk(scope), keys.CHAIN_HEAD_SK)


def read_head(scope: str) -> HeadState | None:
    response = clients.dynamodb().get_item(
        TableName=settings().AUDIT_TABLE,
        Key={k: {"S": v} for k, v in _head_key(scope).items()},
        ConsistentRead=True,
    )
    item = response.get("Item")
    if not item:
        return None
    return HeadState(
        scope=scope,
        seq=int(item["seq"]["N"]),
        hash=str(item["hash"]["S"]),
        updated_at=str(item.get("updated_at", {}).get("S", "")),
    )


def get_record(pk: str, sk: str) -> dict[str, Any] | None:
    response = clients.dynamodb().get_item(
        TableName=settings().AUDIT_TABLE,
        Key={keys.PK: {"S": pk}, keys.SK: {"S": sk}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return dict(item) if item else None


def link(
    pk: str,
    sk: str,
    scope: str,
    audit_id: str,
    seq: int,
    prev_hash: str,
    new_hash: str,
    head_seq: int | None,
) -> LinkResult:
    """Link one record at ``seq`` and move the head there: one transaction.

    ``head_seq`` is the head's seq as read (None: the scope has no head yet). Raises
    :class:`HeadMoved` if the head moved meanwhile.
    """
    table = settings().AUDIT_TABLE
    tx = dynamo.Tx()
    tx.update(
        table,
        dynamo.item_key(pk, sk),
        "SET chain_seq = :seq, prev_hash = :prev, #hash = :hash, #gpk = :gpk, #gsk = :gsk",
        names={"#hash": "hash", "#gpk": keys.GSI3PK, "#gsk": keys.GSI3SK, "#pk": keys.PK},
        values={
            ":seq": seq,
            ":prev": prev_hash,
            ":hash": new_hash,
            ":gpk": keys.chain_pk(scope),
            ":gsk": keys.chain_seq_sk(seq),
        },
        condition="attribute_exists(#pk) AND attribute_not_exists(chain_seq)",
    )
    head_values: dict[str, Any] = {
        ":seq": seq,
        ":hash": new_hash,
        ":ent": HEAD_ENTITY,
        ":scope": scope,
        ":aid": audit_id,
        ":at": utcnow(),
    }
    head_names = {"#seq": "seq", "#hash": "hash", "#ent": keys.ENTITY, "#scope": "scope"}
    if head_seq is None:
        head_condition = "attribute_not_exists(#pk)"
        head_names["#pk"] = keys.PK
    else:
        head_condition = "#seq = :read"
        head_values[":read"] = head_seq
    tx.update(
        table,
        _head_key(scope),
        "SET #seq = :seq, #hash = :hash, #ent = :ent, #scope = :scope, last_audit_id = :aid, updated_at = :at",
        names=head_names,
        values=head_values,
        condition=head_condition,
    )
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if 0 in exc.failed:
            current = get_record(pk, sk)
            return LinkResult.GONE if current is None else LinkResult.ALREADY_LINKED
        raise HeadMoved(f"the head of {scope} moved past seq {head_seq}") from exc
    return LinkResult.LINKED


def iter_chain(scope: str) -> Iterator[Mapping[str, Any]]:
    """A scope's chained records in seq order (GSI3), one page in memory at a time."""
    paginator = clients.dynamodb().get_paginator("query")
    pages = paginator.paginate(
        TableName=settings().AUDIT_TABLE,
        IndexName=keys.GSI3,
        KeyConditionExpression="#gpk = :gpk",
        ExpressionAttributeNames={"#gpk": keys.GSI3PK},
        ExpressionAttributeValues={":gpk": {"S": keys.chain_pk(scope)}},
        ScanIndexForward=True,
    )
    for page in pages:
        yield from page.get("Items", [])


def iter_unchained(scope: str) -> Iterator[Mapping[str, Any]]:
    """The scope's audit records that are not on its chain index, oldest first (reads the partition).

    That is records without chain fields (not linked yet, or never), and records whose chain
    fields do not put them on this scope's chain (written directly, with forged fields).
    """
    paginator = clients.dynamodb().get_paginator("query")
    pages = paginator.paginate(
        TableName=settings().AUDIT_TABLE,
        KeyConditionExpression="#pk = :pk",
        FilterExpression=(
            "attribute_not_exists(chain_seq) OR attribute_not_exists(#chain) OR #chain <> :chain"
        ),
        ProjectionExpression="#pk, #sk, audit_id, #at, chain_seq",
        ExpressionAttributeNames={"#pk": keys.PK, "#sk": keys.SK, "#at": "at", "#chain": keys.GSI3PK},
        ExpressionAttributeValues={
            ":pk": {"S": keys.audit_scope_pk(scope)},
            ":chain": {"S": keys.chain_pk(scope)},
        },
        ConsistentRead=True,
        ScanIndexForward=True,
    )
    for page in pages:
        yield from page.get("Items", [])
