"""Audit records: their API model, their seal, and the hash chain that links them.

Pure: no AWS here. Writers seal each record (``seal = HMAC-SHA256(key, digest)``, where
``digest`` is the SHA-256 of the canonical JSON of the record's sealed fields). The
chainer links records per scope (a project, or GLOBAL): ``hash = SHA-256(prev_hash ||
digest)``. :class:`ChainWalk` checks a chain link by link, in sequence order, holding
only the previous link, so verifying any chain takes constant memory.

The sealed field set is part of the on-disk format: adding a field to SEALED_FIELDS changes
every digest, so a new field needs a new seal version (and verify must know both). Fields of
OPTIONAL_SEALED_FIELDS are sealed only where a record sets them, so records written before
they existed keep their digests; removing one from a record that set it breaks its seal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

GENESIS_HASH = "0" * 64  # the prev_hash of a chain's first link (seq 1)

SEALED_FIELDS: tuple[str, ...] = (
    "audit_id",
    "project_id",
    "actor_id",
    "actor_role",
    "actor_project_role",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "counts",
    "affected_ids_key",
    "request_id",
    "source_ip",
    "user_agent",
    "at",
)
# Sealed where set (absent from the canonical JSON where null).
OPTIONAL_SEALED_FIELDS: tuple[str, ...] = ("affected_ids_sha256",)
CHAIN_FIELDS: tuple[str, ...] = ("chain_seq", "prev_hash", "hash")


class AuditRecord(BaseModel):
    """One audit record as the API returns it (the seal stays in the table)."""

    audit_id: str
    project_id: str | None = None
    actor_id: str = Field(description="Cognito sub, or system:<component> for pipelines.")
    actor_role: str = Field(description="The actor's strongest global role when it acted.")
    actor_project_role: str | None = Field(
        default=None, description="The actor's effective role in the project, for project actions."
    )
    action: str = Field(description="What happened, e.g. task.update.")
    target_type: str
    target_id: str
    before: Any = None
    after: Any = None
    counts: dict[str, int] | None = Field(default=None, description="Bulk operations: how many of each.")
    affected_ids_key: str | None = Field(
        default=None, description="Bulk operations: S3 key (exports bucket) of the JSON list of affected ids."
    )
    affected_ids_sha256: str | None = Field(
        default=None, description="SHA-256 (hex) of the object at affected_ids_key, sealed with the record."
    )
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    at: str = Field(description="ISO-8601 UTC time of the change.")
    chain_seq: int | None = Field(default=None, description="Position in the scope's chain; null: pending.")
    prev_hash: str | None = None
    hash: str | None = None


class TaskEvent(BaseModel):
    """One entry of a task's history: an audit record without its request details and seal
    (source IP, user agent and hashes stay in the project's audit, for managers)."""

    audit_id: str
    actor_id: str = Field(description="Cognito sub, or system:<component> for pipelines.")
    actor_role: str = Field(description="The actor's strongest global role when it acted.")
    actor_project_role: str | None = Field(
        default=None, description="The actor's effective role in the project."
    )
    action: str = Field(description="What happened, e.g. task.lease, review.reject.")
    before: Any = None
    after: Any = None
    at: str = Field(description="ISO-8601 UTC time of the change.")

    @classmethod
    def of(cls, record: AuditRecord) -> TaskEvent:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


# ---- seal and links -------------------------------------------------------------------------


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """The sealed fields as canonical JSON: every sealed field (absent = null), and every optional
    sealed field that is set; sorted keys, compact."""
    sealed = {name: fields.get(name) for name in SEALED_FIELDS}
    sealed |= {name: fields[name] for name in OPTIONAL_SEALED_FIELDS if fields.get(name) is not None}
    return json.dumps(sealed, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def record_digest(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's canonical JSON."""
    return hashlib.sha256(canonical_json(fields)).hexdigest()


def seal(key: bytes, digest: str) -> str:
    """HMAC-SHA256 (hex) of a record digest under the seal key."""
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def seal_valid(key: bytes, digest: str, candidate: str | None) -> bool:
    return bool(candidate) and hmac.compare_digest(seal(key, digest), str(candidate))


def link_hash(prev_hash: str, digest: str) -> str:
    """A link's hash: SHA-256 (hex) of the previous link's hash, then the record's digest (hex text)."""
    return hashlib.sha256((prev_hash + digest).encode("ascii")).hexdigest()


# ---- verification ---------------------------------------------------------------------------


class BreakReason(StrEnum):
    SEAL_INVALID = "seal_invalid"  # not written by a Serval writer (forged), or changed before linking
    HASH_MISMATCH = "hash_mismatch"  # the record changed after it was linked
    PREV_HASH_MISMATCH = "prev_hash_mismatch"  # the link does not point at the previous link
    SEQ_GAP = "seq_gap"  # records deleted from the chain
    SEQ_DUPLICATE = "seq_duplicate"  # a second record claims a position (forged chain fields)
    WRONG_SCOPE = "wrong_scope"  # a record of another scope in this chain
    CHAIN_START_MISSING = "chain_start_missing"  # the first records are gone and no TTL explains it
    HEAD_MISSING = "head_missing"
    HEAD_MISMATCH = "head_mismatch"  # the head does not end at the last link
    UNCHAINED_RECORD = "unchained_record"  # older than the grace period and still not linked
    OFF_CHAIN_RECORD = "off_chain_record"  # carries chain fields, but the chain does not hold it


class BrokenLink(BaseModel):
    seq: int | None = Field(description="The first position where the chain breaks (null: not in the chain).")
    audit_id: str | None = None
    reason: BreakReason
    detail: str = ""


class ChainReport(BaseModel):
    scope: str = Field(description="A project id, or GLOBAL.")
    ok: bool
    records_checked: int
    head_seq: int | None = Field(description="The head's seq when verify started (null: no chain yet).")
    first_seq: int | None = None
    pending: int = Field(description="Records not linked yet, younger than the grace period.")
    retention_truncated: bool = Field(description="The chain's start expired by TTL (dev environments).")
    broken: BrokenLink | None = None


@dataclass(frozen=True)
class Link:
    """What verify reads of one chained record."""

    seq: int
    audit_id: str
    scope: str  # the scope of the record's own project_id
    digest: str  # recomputed from the stored fields
    seal: str | None
    prev_hash: str | None
    hash: str | None


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    fresh: bool  # updated within the grace period (GSI3 may not show its last links yet)


class ChainWalk:
    """Checks a chain's links in seq order, keeping only the previous one and the first break."""

    def __init__(self, scope: str, key: bytes, head: Head | None, retention_ttl: bool) -> None:
        self.scope = scope
        self._key = key
        self.head = head
        self._retention_ttl = retention_ttl
        self.checked = 0
        self.first_seq: int | None = None
        self.retention_truncated = False
        self.broken: BrokenLink | None = None
        self.pending = 0
        self._prev: Link | None = None
        self._head_seen = False

    def _break(self, seq: int | None, audit_id: str | None, reason: BreakReason, detail: str) -> None:
        if self.broken is None:
            self.broken = BrokenLink(seq=seq, audit_id=audit_id, reason=reason, detail=detail)

    def add(self, link: Link) -> None:
        self.checked += 1
        prev = self._prev
        if prev is None:
            self.first_seq = link.seq
            if link.seq == 1:
                if link.prev_hash != GENESIS_HASH:
                    self._break(
                        link.seq, link.audit_id, BreakReason.PREV_HASH_MISMATCH, "seq 1 must follow genesis"
                    )
            elif self._retention_ttl:
                self.retention_truncated = True
            else:
                self._break(1, None, BreakReason.CHAIN_START_MISSING, f"the chain starts at seq {link.seq}")
        elif link.seq == prev.seq:
            self._break(
                link.seq, link.audit_id, BreakReason.SEQ_DUPLICATE, f"{prev.audit_id} holds seq {prev.seq}"
            )
        elif link.seq != prev.seq + 1:
            self._break(
                prev.seq + 1, None, BreakReason.SEQ_GAP, f"seqs {prev.seq + 1}..{link.seq - 1} are missing"
            )
        elif link.prev_hash != prev.hash:
            self._break(
                link.seq, link.audit_id, BreakReason.PREV_HASH_MISMATCH, "prev_hash is not seq's hash"
            )
        self._check_record(link)
        if self.head is not None and link.seq == self.head.seq:
            self._head_seen = True
            if link.hash != self.head.hash:
                self._break(link.seq, link.audit_id, BreakReason.HEAD_MISMATCH, "the head's hash differs")
        self._prev = link

    def _check_record(self, link: Link) -> None:
        if link.scope != self.scope:
            self._break(
                link.seq, link.audit_id, BreakReason.WRONG_SCOPE, f"the record belongs to {link.scope}"
            )
        elif link.prev_hash is None or link.hash != link_hash(link.prev_hash, link.digest):
            self._break(
                link.seq, link.audit_id, BreakReason.HASH_MISMATCH, "the record changed after linking"
            )
        elif not seal_valid(self._key, link.digest, link.seal):
            self._break(link.seq, link.audit_id, BreakReason.SEAL_INVALID, "the record's seal is not valid")

    def finish(self) -> None:
        """Compare the end of the chain with its head (read before the walk started)."""
        last = self._prev
        head = self.head
        if head is None:
            if last is not None:
                self._break(None, None, BreakReason.HEAD_MISSING, f"links up to seq {last.seq} but no head")
            return
        if self._head_seen:
            return
        last_seq = last.seq if last is not None else 0
        if last_seq < head.seq and head.fresh:
            self.pending += head.seq - last_seq  # linked a moment ago; GSI3 has not caught up
        elif last_seq < head.seq:
            self._break(
                last_seq + 1,
                None,
                BreakReason.SEQ_GAP,
                f"the head is at seq {head.seq}, the chain ends at {last_seq}",
            )
        else:
            self._break(head.seq, None, BreakReason.HEAD_MISMATCH, f"no link at the head's seq {head.seq}")

    def report(self, unchained_broken: BrokenLink | None = None, pending: int = 0) -> ChainReport:
        broken = self.broken or unchained_broken
        return ChainReport(
            scope=self.scope,
            ok=broken is None,
            records_checked=self.checked,
            head_seq=self.head.seq if self.head else None,
            first_seq=self.first_seq,
            pending=self.pending + pending,
            retention_truncated=self.retention_truncated,
            broken=broken,
        )
