"""The audit trail's pure parts: canonical digest, seal, link hash, and the chain walk."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from serval import keys
from serval.domain import audit
from serval.domain.audit import BreakReason, ChainWalk, Head, Link

KEY = b"k" * 32
RECORD: dict[str, Any] = {
    "audit_id": "aud_1",
    "project_id": "p_1",
    "actor_id": "u-1",
    "actor_role": "manager",
    "action": "task.update",
    "target_type": "task",
    "target_id": "t_1",
    "before": {"priority": 1, "tags": ["a"]},
    "after": {"priority": 2, "tags": ["a", "b"]},
    "at": "2026-11-28T10:00:00.000Z",
}


# ---- digest, seal, link ----------------------------------------------------------------------


def test_the_digest_ignores_key_order_absent_nulls_and_non_sealed_fields() -> None:
    # Given the same record spelled differently
    reordered = dict(reversed(list(RECORD.items())))
    with_nulls = RECORD | {"counts": None, "request_id": None}
    with_chain = RECORD | {"chain_seq": 4, "prev_hash": "x", "hash": "y", "seal": "z", "PK": "PROJECT#p_1"}
    # Then it has one digest
    digests = {audit.record_digest(r) for r in (RECORD, reordered, with_nulls, with_chain)}
    assert len(digests) == 1


def test_the_digest_is_sha256_of_compact_sorted_json() -> None:
    # Given a record's canonical form
    canonical = audit.canonical_json(RECORD)
    # Then it is compact, sorted, lists every sealed field, and hashes with SHA-256
    assert b" " not in canonical.replace(b"task.update", b"")
    assert canonical.startswith(b'{"action":"task.update","actor_id":"u-1","actor_project_role":null,')
    assert audit.record_digest(RECORD) == hashlib.sha256(canonical).hexdigest()


def test_any_change_of_a_sealed_field_changes_the_digest() -> None:
    base = audit.record_digest(RECORD)
    for field in audit.SEALED_FIELDS:
        assert audit.record_digest(RECORD | {field: "changed"}) != base, field
    assert audit.record_digest(RECORD | {"after": {"priority": 3, "tags": ["a", "b"]}}) != base


def test_an_optional_sealed_field_is_sealed_where_set_and_leaves_older_digests_alone() -> None:
    # Given a record written before the evidence hash existed, and one that sets it
    base = audit.record_digest(RECORD)
    sealed = RECORD | {"affected_ids_sha256": "ab" * 32}

    # Then the older record's digest is what it was (null optional fields are not in it)...
    assert audit.record_digest(RECORD | {"affected_ids_sha256": None}) == base
    assert b"affected_ids_sha256" not in audit.canonical_json(RECORD)
    # ...and the hash is sealed where set: changing or dropping it breaks the seal
    seal = audit.seal(KEY, audit.record_digest(sealed))
    assert audit.seal_valid(KEY, audit.record_digest(sealed), seal)
    assert not audit.seal_valid(KEY, audit.record_digest(sealed | {"affected_ids_sha256": "cd" * 32}), seal)
    assert not audit.seal_valid(KEY, base, seal)


def test_the_seal_is_an_hmac_of_the_digest_under_the_key() -> None:
    digest = audit.record_digest(RECORD)
    seal = audit.seal(KEY, digest)
    assert seal == hmac.new(KEY, digest.encode(), hashlib.sha256).hexdigest()
    assert audit.seal_valid(KEY, digest, seal)
    assert not audit.seal_valid(b"another key", digest, seal)
    assert not audit.seal_valid(KEY, audit.record_digest(RECORD | {"after": None}), seal)
    assert not audit.seal_valid(KEY, digest, None)
    assert not audit.seal_valid(KEY, digest, "")


def test_a_link_hash_is_sha256_of_prev_then_digest() -> None:
    digest = audit.record_digest(RECORD)
    assert (
        audit.link_hash(audit.GENESIS_HASH, digest)
        == hashlib.sha256((audit.GENESIS_HASH + digest).encode()).hexdigest()
    )
    assert audit.link_hash(audit.GENESIS_HASH, digest) != audit.link_hash("1" * 64, digest)


def test_chain_keys_sort_by_seq_and_map_back_to_scopes() -> None:
    assert keys.chain_seq_sk(9) < keys.chain_seq_sk(10) < keys.chain_seq_sk(100)
    assert keys.chain_pk(keys.audit_scope("p_1")) == "CHAIN#p_1"
    assert keys.audit_scope(None) == keys.GLOBAL_SCOPE
    for project_id in ("p_1", None):
        scope = keys.audit_scope(project_id)
        assert keys.audit_scope_pk(scope) == keys.audit_pk(project_id)
        assert keys.audit_scope_of_pk(keys.audit_pk(project_id)) == scope
    assert keys.audit_scope_of_pk(keys.chain_pk("p_1")) is None
    assert keys.audit_bulk_ids_key("p_1", "aud_1") == "audit-evidence/p_1/aud_1.json"


# ---- the chain walk --------------------------------------------------------------------------


def _chain(n: int, scope: str = "p_1", key: bytes = KEY) -> list[Link]:
    links, prev = [], audit.GENESIS_HASH
    for seq in range(1, n + 1):
        digest = audit.record_digest(RECORD | {"audit_id": f"aud_{seq}"})
        this = audit.link_hash(prev, digest)
        links.append(Link(seq, f"aud_{seq}", scope, digest, audit.seal(key, digest), prev, this))
        prev = this
    return links


def _walk(links: list[Link], head: Head | None = None, ttl: bool = False, fresh: bool = False) -> ChainWalk:
    if head is None and links:
        head = Head(links[-1].seq, links[-1].hash or "", fresh)
    walk = ChainWalk("p_1", KEY, head, retention_ttl=ttl)
    for link in links:
        walk.add(link)
    walk.finish()
    return walk


def test_an_intact_chain_verifies_ok() -> None:
    report = _walk(_chain(5)).report()
    assert report.ok
    assert (report.records_checked, report.first_seq, report.head_seq) == (5, 1, 5)
    assert report.broken is None
    assert not report.retention_truncated


def test_an_empty_scope_verifies_ok() -> None:
    report = ChainWalk("p_1", KEY, None, retention_ttl=False)
    report.finish()
    assert report.report().ok
    assert report.report().head_seq is None


def _replace(link: Link, **changes: Any) -> Link:
    return Link(**(link.__dict__ | changes))


@pytest.mark.parametrize(
    ("mutate", "seq", "reason"),
    [
        # a record changed after linking: its digest no longer gives its hash
        (lambda c: c.__setitem__(2, _replace(c[2], digest="0" * 64)), 3, BreakReason.HASH_MISMATCH),
        # a record written without the key (forged), linked faithfully by the chainer
        (lambda c: c.__setitem__(2, _replace(c[2], seal="f" * 64)), 3, BreakReason.SEAL_INVALID),
        # a record deleted from the middle
        (lambda c: c.pop(2), 3, BreakReason.SEQ_GAP),
        # a second record claiming a taken seq
        (lambda c: c.insert(2, _replace(c[1], audit_id="aud_x")), 2, BreakReason.SEQ_DUPLICATE),
        # a link pointing at something else than the previous link
        (lambda c: c.__setitem__(3, _replace(c[3], prev_hash="1" * 64)), 4, BreakReason.PREV_HASH_MISMATCH),
        # a record of another project moved into this chain
        (lambda c: c.__setitem__(1, _replace(c[1], scope="p_2")), 2, BreakReason.WRONG_SCOPE),
        # a chain whose first link does not follow genesis
        (lambda c: c.__setitem__(0, _replace(c[0], prev_hash="1" * 64)), 1, BreakReason.PREV_HASH_MISMATCH),
    ],
)
def test_the_first_broken_link_is_reported_by_seq(mutate: Any, seq: int, reason: BreakReason) -> None:
    links = _chain(5)
    head = Head(5, links[-1].hash or "", fresh=False)
    mutate(links)
    report = _walk(links, head).report()
    assert not report.ok
    assert report.broken is not None
    assert (report.broken.seq, report.broken.reason) == (seq, reason)


def test_only_the_first_of_several_breaks_is_reported() -> None:
    links = _chain(6)
    links[4] = _replace(links[4], seal="bad")
    links[1] = _replace(links[1], seal="bad")
    report = _walk(links, Head(6, links[-1].hash or "", False)).report()
    assert report.broken is not None
    assert report.broken.seq == 2


def test_a_missing_start_is_retention_with_a_ttl_and_broken_without() -> None:
    links = _chain(6)[3:]  # seqs 4..6: 1..3 expired (or were deleted)
    with_ttl = _walk(links, ttl=True).report()
    assert with_ttl.ok
    assert with_ttl.retention_truncated
    assert with_ttl.first_seq == 4
    without = _walk(links, ttl=False).report()
    assert not without.ok
    assert without.broken is not None
    assert (without.broken.seq, without.broken.reason) == (1, BreakReason.CHAIN_START_MISSING)


def test_the_head_must_end_the_chain() -> None:
    links = _chain(4)
    wrong_hash = _walk(links, Head(4, "0" * 64, False)).report()
    assert wrong_hash.broken is not None
    assert wrong_hash.broken.reason == BreakReason.HEAD_MISMATCH
    no_head = ChainWalk("p_1", KEY, None, retention_ttl=False)
    for link in links:
        no_head.add(link)
    no_head.finish()
    assert no_head.report().broken is not None
    assert no_head.report().broken.reason == BreakReason.HEAD_MISSING  # type: ignore[union-attr]


def test_links_missing_at_the_end_are_pending_while_the_head_is_fresh_then_a_gap() -> None:
    links = _chain(5)
    visible = links[:3]  # GSI3 has not caught up with seqs 4 and 5 yet
    fresh = _walk(visible, Head(5, links[-1].hash or "", fresh=True)).report()
    assert fresh.ok
    assert fresh.pending == 2
    stale = _walk(visible, Head(5, links[-1].hash or "", fresh=False)).report()
    assert stale.broken is not None
    assert (stale.broken.seq, stale.broken.reason) == (4, BreakReason.SEQ_GAP)


def test_links_beyond_the_head_read_at_the_start_are_fine() -> None:
    links = _chain(5)
    report = _walk(links, Head(3, links[2].hash or "", False)).report()
    assert report.ok
    assert report.records_checked == 5


def test_an_unchained_record_breaks_a_sound_chain_but_not_a_broken_one() -> None:
    unchained = audit.BrokenLink(seq=None, audit_id="aud_9", reason=BreakReason.UNCHAINED_RECORD)
    sound = _walk(_chain(3)).report(unchained, pending=1)
    assert sound.broken == unchained
    assert sound.pending == 1
    links = _chain(3)
    links[1] = _replace(links[1], seal="bad")
    broken = _walk(links, Head(3, links[-1].hash or "", False)).report(unchained)
    assert broken.broken is not None
    assert broken.broken.seq == 2


def test_every_exports_bucket_key_is_temporary_or_audit_evidence() -> None:
    # Given every key the code writes to the exports bucket
    from serval.domain.exports import ExportFormat, dataset_export_key
    from serval.domain.exports.shards import shard_key
    from serval.domain.jobs import AuditExportFormat, audit_export_key

    temporary = [
        audit_export_key("p_1", "job_1", AuditExportFormat.CSV),
        dataset_export_key("p_1", "job_1", ExportFormat.COCO),
        shard_key("p_1", "job_1", 3),
        keys.bulk_ids_key("p_1", "job_1"),
        keys.bulk_work_key("p_1", "job_1"),
        keys.bulk_failed_key("p_1", "job_1", 0),
    ]
    evidence = keys.audit_bulk_ids_key("p_1", "aud_1")

    # Then the temporary ones fall under a prefix the lifecycle expires, and audit evidence
    # under its own prefix, which no temporary prefix covers
    assert all(k.startswith(keys.EXPORT_TEMPORARY_PREFIXES) for k in temporary), temporary
    assert evidence.startswith(keys.AUDIT_EVIDENCE_PREFIX)
    assert not evidence.startswith(keys.EXPORT_TEMPORARY_PREFIXES)
    assert not any(p.startswith(keys.AUDIT_EVIDENCE_PREFIX) for p in keys.EXPORT_TEMPORARY_PREFIXES)
