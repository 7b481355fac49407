"""The tamper-evident audit trail: link new records into their scope's chain; verify a chain.

Writers never touch the chain (a per-scope head in every mutation would make all writers
of a project contend on one item). They seal each record; the chainer, fed by the audit
table's stream, links records in stream order, which per partition (= per scope) is
commit order. It links every record, forged ones included: the chain is a faithful log of
what the table received, and :func:`verify` flags the bad seals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from serval import keys
from serval.adapters import audit, audit_chain
from serval.domain import audit as domain
from serval.settings import settings

PENDING_GRACE = timedelta(minutes=5)
HEAD_ATTEMPTS = 5


class ChainContended(Exception):
    """The scope's head kept moving under this chainer; the record is retried."""


@dataclass(frozen=True)
class LinkOutcome:
    kind: str  # "linked", "already_linked", "gone" or "ignored"
    scope: str | None = None
    seq: int | None = None
    audit_id: str | None = None
    seal_ok: bool | None = True  # None: not checked (the key could not be read)


def link_change(
    event_name: str, keys_image: Mapping[str, Any], new_image: Mapping[str, Any] | None
) -> LinkOutcome:
    """Link the record a stream INSERT carries; anything else is ignored.

    Idempotent: a record that already has chain fields (a redelivery, or a forgery that
    brought its own) is left alone.
    """
    if event_name != "INSERT" or not new_image:
        return LinkOutcome("ignored")
    scope = audit.scope_of(new_image)
    if scope is None:
        return LinkOutcome("ignored")  # a chain head, or no audit record at all
    audit_id = audit.string(new_image, "audit_id") or ""
    if audit.chain_seq(new_image) is not None:
        return LinkOutcome("already_linked", scope, audit.chain_seq(new_image), audit_id)
    pk, sk = audit.string(keys_image, keys.PK), audit.string(keys_image, keys.SK)
    if pk is None or sk is None:
        return LinkOutcome("ignored")
    digest = domain.record_digest(audit.sealed_fields(new_image))
    seal_ok = _seal_ok(digest, audit.string(new_image, "seal"))
    for _ in range(HEAD_ATTEMPTS):
        head = audit_chain.read_head(scope)
        seq = head.seq + 1 if head else 1
        prev_hash = head.hash if head else domain.GENESIS_HASH
        try:
            result = audit_chain.link(
                pk,
                sk,
                scope,
                audit_id,
                seq,
                prev_hash,
                domain.link_hash(prev_hash, digest),
                head.seq if head else None,
            )
        except audit_chain.HeadMoved:
            continue
        linked = result is audit_chain.LinkResult.LINKED
        return LinkOutcome(result.value, scope, seq if linked else None, audit_id, seal_ok)
    raise ChainContended(f"the head of {scope} kept moving; {audit_id} is retried")


def _seal_ok(digest: str, seal: str | None) -> bool | None:
    """Whether the seal is valid (for the chainer's metrics); None when the key can't be read.

    Linking never waits on this check: verify makes it authoritatively.
    """
    try:
        key = audit.seal_key()
    except Exception:
        return None
    return domain.seal_valid(key, digest, seal)


def _age(at: str | None, now: datetime) -> timedelta | None:
    try:
        moment = datetime.fromisoformat(at) if at else None
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return now - moment


def verify(scope: str, now: datetime | None = None, grace: timedelta = PENDING_GRACE) -> domain.ChainReport:
    """Check a scope's whole chain in seq order (constant memory), then its unlinked records.

    Reports the first broken link by seq: a bad seal (forged), a hash that no longer
    matches its record (tampered), a prev_hash or seq discontinuity (deleted or inserted
    records), a head that does not end the chain. Records not linked yet are ``pending``
    while younger than ``grace``, then broken ("unchained_record").
    """
    now = now or datetime.now(UTC)
    key = audit.seal_key()
    state = audit_chain.read_head(scope)
    head = None
    if state is not None:
        age = _age(state.updated_at, now)
        head = domain.Head(seq=state.seq, hash=state.hash, fresh=age is not None and age < grace)
    walk = domain.ChainWalk(scope, key, head, retention_ttl=settings().AUDIT_TTL_DAYS > 0)
    for raw in audit_chain.iter_chain(scope):
        fields = audit.sealed_fields(raw)
        walk.add(
            domain.Link(
                seq=audit.chain_seq(raw) or 0,
                audit_id=audit.string(raw, "audit_id") or "",
                scope=keys.audit_scope(
                    fields.get("project_id") if isinstance(fields.get("project_id"), str) else None
                ),
                digest=domain.record_digest(fields),
                seal=audit.string(raw, "seal"),
                prev_hash=audit.string(raw, "prev_hash"),
                hash=audit.string(raw, "hash"),
            )
        )
    walk.finish()
    pending = 0
    unchained: domain.BrokenLink | None = None
    for raw in audit_chain.iter_unchained(scope):
        age = _age(audit.string(raw, "at"), now)
        off_chain = audit.chain_seq(raw) is not None  # chain fields the chain does not know
        if age is not None and age < grace and not off_chain:
            pending += 1
        elif unchained is None and off_chain:
            unchained = domain.BrokenLink(
                seq=None,
                audit_id=audit.string(raw, "audit_id"),
                reason=domain.BreakReason.OFF_CHAIN_RECORD,
                detail="carries chain fields but is not on this scope's chain (written directly)",
            )
        elif unchained is None:
            unchained = domain.BrokenLink(
                seq=None,
                audit_id=audit.string(raw, "audit_id"),
                reason=domain.BreakReason.UNCHAINED_RECORD,
                detail=f"written at {audit.string(raw, 'at')}, not linked after {int(grace.total_seconds())} s",
            )
    return walk.report(unchained, pending)
