"""The audit hash chain in DynamoDB: chain heads, linking transactions, chain-order reads.

A scope's head is one item of the audit table (``PK=CHAIN#<scope>``, ``SK=HEAD``,
``entity=chain_head``) holding the last linked ``seq`` and ``hash``. Linking is one
TransactWriteItems: set each record's chain fields (only if it has none yet) and move the
head from the seq the chainer read to the last one. :func:`link_run` links a run of up to
:data:`MAX_RUN` consecutive records of one scope at once (one head write for the run: the
head is the one item every record of a scope writes); :func:`link` links one.
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


class RunRefused(Exception):
    """A record of the run is gone or linked already: link the run's records one by one."""


# One transaction holds at most 100 actions: the run's records and the head.
MAX_RUN = dynamo.MAX_TRANSACTION_ACTIONS - 1


@dataclass(frozen=True)
class NewLink:
    """A record's place on its scope's chain."""

    pk: str
    sk: str
    audit_id: str
    seq: int
    prev_hash: str
    hash: str


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


def _set_link(tx: dynamo.Tx, scope: str, new: NewLink) -> None:
    tx.update(
        settings().AUDIT_TABLE,
        dynamo.item_key(new.pk, new.sk),
        "SET chain_seq = :seq, prev_hash = :prev, #hash = :hash, #gpk = :gpk, #gsk = :gsk",
        names={"#hash": "hash", "#gpk": keys.GSI3PK, "#gsk": keys.GSI3SK, "#pk": keys.PK},
        values={
            ":seq": new.seq,
            ":prev": new.prev_hash,
            ":hash": new.hash,
            ":gpk": keys.chain_pk(scope),
            ":gsk": keys.chain_seq_sk(new.seq),
        },
        condition="attribute_exists(#pk) AND attribute_not_exists(chain_seq)",
    )


def _move_head(tx: dynamo.Tx, scope: str, last: NewLink, head_seq: int | None) -> None:
    head_values: dict[str, Any] = {
        ":seq": last.seq,
        ":hash": last.hash,
        ":ent": HEAD_ENTITY,
        ":scope": scope,
        ":aid": last.audit_id,
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
        settings().AUDIT_TABLE,
        _head_key(scope),
        "SET #seq = :seq, #hash = :hash, #ent = :ent, #scope = :scope, last_audit_id = :aid, updated_at = :at",
        names=head_names,
        values=head_values,
        condition=head_condition,
    )


def _commit(tx: dynamo.Tx, scope: str, head_seq: int | None) -> None:
    """Commit a linking transaction (records first, the head last)."""
    try:
        tx.commit()
    except dynamo.TransactionCancelled as exc:
        if any(index < len(tx) - 1 for index in exc.failed):
            raise RunRefused(f"a record of the run on {scope} is gone or linked already") from exc
        raise HeadMoved(f"the head of {scope} moved past seq {head_seq}") from exc


def link_run(scope: str, run: list[NewLink], head_seq: int | None) -> None:
    """Link consecutive records of one scope and move the head to the last: one transaction.

    Raises :class:`HeadMoved` if the head moved since ``head_seq`` was read, and
    :class:`RunRefused` if a record is gone or linked already (nothing is written then).
    """
    if not 0 < len(run) <= MAX_RUN:
        raise ValueError(f"a run links 1 to {MAX_RUN} records, not {len(run)}")
    tx = dynamo.Tx()
    for new in run:
        _set_link(tx, scope, new)
    _move_head(tx, scope, run[-1], head_seq)
    _commit(tx, scope, head_seq)


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
    new = NewLink(pk, sk, audit_id, seq, prev_hash, new_hash)
    try:
        link_run(scope, [new], head_seq)
    except RunRefused:
        return LinkResult.GONE if get_record(pk, sk) is None else LinkResult.ALREADY_LINKED
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
