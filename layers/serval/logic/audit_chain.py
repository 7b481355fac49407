"""The tamper-evident audit trail: link new records into their scope's chain; verify a chain.

Writers never touch the chain (a per-scope head in every mutation would make all writers
of a project contend on one item). They seal each record; the chainer, fed by the audit
table's stream, links records in stream order, which per partition (= per scope) is
commit order. It links every record, forged ones included: the chain is a faithful log of
what the table received, and :func:`verify` flags the bad seals.

:func:`link_batch` links a stream batch: each scope's new records in runs (one head read per
scope, one transaction per run of up to 99 records), so a busy project's head item takes one
write per run rather than one per record. A run that cannot be written whole (a record
redelivered, or gone) is linked record by record (:func:`link_change`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from serval import keys
from serval.adapters import audit, audit_chain
from serval.domain import audit as domain
from serval.settings import settings

PENDING_GRACE = timedelta(minutes=5)
HEAD_ATTEMPTS = 5


class ChainContended(Exception):
    """The scope's head kept moving under this chainer; the record is retried."""


class LinkKind(StrEnum):
    """What the chainer did with one stream record."""

    LINKED = "linked"
    ALREADY_LINKED = "already_linked"  # a redelivered record: linked before
    GONE = "gone"  # the record was deleted before it could be linked
    IGNORED = "ignored"  # not an audit record's INSERT


@dataclass(frozen=True)
class LinkOutcome:
    kind: LinkKind
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
        return LinkOutcome(LinkKind.IGNORED)
    scope = audit.scope_of(new_image)
    if scope is None:
        return LinkOutcome(LinkKind.IGNORED)  # a chain head, or no audit record at all
    audit_id = audit.string(new_image, "audit_id") or ""
    if audit.chain_seq(new_image) is not None:
        return LinkOutcome(LinkKind.ALREADY_LINKED, scope, audit.chain_seq(new_image), audit_id)
    pk, sk = audit.string(keys_image, keys.PK), audit.string(keys_image, keys.SK)
    if pk is None or sk is None:
        return LinkOutcome(LinkKind.IGNORED)
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
        return LinkOutcome(LinkKind(result.value), scope, seq if linked else None, audit_id, seal_ok)
    raise ChainContended(f"the head of {scope} kept moving; {audit_id} is retried")


@dataclass(frozen=True)
class StreamChange:
    """One record of an audit-table stream batch."""

    event_name: str
    keys_image: Mapping[str, Any]
    new_image: Mapping[str, Any] | None


@dataclass
class BatchOutcome:
    """The outcome of each record of a batch, in batch order, up to the first that failed.

    ``failed_at`` is the index of that record (None: every record was handled). The records
    from it on must be redelivered: some of them may be linked already, which is harmless.
    """

    outcomes: list[LinkOutcome] = field(default_factory=list)
    failed_at: int | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class _New:
    index: int
    change: StreamChange
    scope: str
    audit_id: str
    pk: str
    sk: str
    digest: str


def _new_record(index: int, change: StreamChange) -> _New | None:
    """The record a change asks to link, or None when the change needs no linking."""
    image = change.new_image
    if change.event_name != "INSERT" or not image:
        return None
    scope = audit.scope_of(image)
    pk, sk = audit.string(change.keys_image, keys.PK), audit.string(change.keys_image, keys.SK)
    if scope is None or audit.chain_seq(image) is not None or pk is None or sk is None:
        return None
    digest = domain.record_digest(audit.sealed_fields(image))
    return _New(index, change, scope, audit.string(image, "audit_id") or "", pk, sk, digest)


def link_batch(changes: Sequence[StreamChange]) -> BatchOutcome:
    """Link a stream batch in runs per scope; stop each scope at its first failure."""
    outcomes: dict[int, LinkOutcome] = {}
    by_scope: dict[str, list[_New]] = {}
    for index, change in enumerate(changes):
        new = _new_record(index, change)
        if new is None:
            outcomes[index] = link_change(change.event_name, change.keys_image, change.new_image)
        else:
            by_scope.setdefault(new.scope, []).append(new)
    failures: list[tuple[int, Exception]] = []
    for scope, records in by_scope.items():
        try:
            _link_scope(scope, records, outcomes)
        except Exception as exc:  # the first record of the scope not linked yet
            failures.append((min(r.index for r in records if r.index not in outcomes), exc))
    result = BatchOutcome()
    failed_at, error = min(failures, key=lambda f: f[0]) if failures else (len(changes), None)
    result.outcomes = [outcomes[i] for i in range(failed_at)]
    if error is not None:
        result.failed_at, result.error = failed_at, error
    return result


def _link_scope(scope: str, records: list[_New], outcomes: dict[int, LinkOutcome]) -> None:
    """Link one scope's records in order, in runs; a refused run goes record by record."""
    start = 0
    while start < len(records):
        run = records[start : start + audit_chain.MAX_RUN]
        for _ in range(HEAD_ATTEMPTS):
            head = audit_chain.read_head(scope)
            links = _chain_links(run, head)
            try:
                audit_chain.link_run(scope, links, head.seq if head else None)
            except audit_chain.HeadMoved:
                continue
            except audit_chain.RunRefused:
                for new in run:
                    c = new.change
                    outcomes[new.index] = link_change(c.event_name, c.keys_image, c.new_image)
                break
            for new, link in zip(run, links, strict=True):
                seal_ok = _seal_ok(new.digest, audit.string(new.change.new_image or {}, "seal"))
                outcomes[new.index] = LinkOutcome(LinkKind.LINKED, scope, link.seq, new.audit_id, seal_ok)
            break
        else:
            raise ChainContended(
                f"the head of {scope} kept moving; the run from {run[0].audit_id} is retried"
            )
        start += len(run)


def _chain_links(run: list[_New], head: audit_chain.HeadState | None) -> list[audit_chain.NewLink]:
    seq = head.seq if head else 0
    prev_hash = head.hash if head else domain.GENESIS_HASH
    links: list[audit_chain.NewLink] = []
    for new in run:
        seq += 1
        link_hash = domain.link_hash(prev_hash, new.digest)
        links.append(audit_chain.NewLink(new.pk, new.sk, new.audit_id, seq, prev_hash, link_hash))
        prev_hash = link_hash
    return links


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
