"""Audit records: built and sealed here, written inside the same transaction as the change.

Every record carries ``seal = HMAC-SHA256(key, digest)`` over its sealed fields (see
``domain.audit``). The key is a Secrets Manager secret (``AUDIT_SEAL_SECRET``), read once
and cached in-process for a few minutes. The cache is keyed by secret name and belongs
to the SDK client that read it, so functions sharing one process (the local stack) share
it, and a replaced client (tests) never sees another account's key.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from serval import ids, keys
from serval.adapters import clients, dynamo, storage
from serval.domain import audit as domain
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.settings import settings

SEAL_KEY_MAX_AGE_S = 300
JSON_FIELDS = frozenset({"before", "after", "counts"})

_key_lock = threading.Lock()
# Powertools' SecretsProvider caches the key for SEAL_KEY_MAX_AGE_S; one provider per client
# (tests replace the client when they start a fresh moto).
_providers: dict[int, tuple[Any, Any]] = {}  # id(client) -> (client, SecretsProvider)


class SealKeyUnavailable(RuntimeError):
    """The function has no seal secret configured: it may not write or verify audit records."""


def seal_key() -> bytes:
    """The seal key (the secret's string, UTF-8), cached for ``SEAL_KEY_MAX_AGE_S`` seconds."""
    name = settings().AUDIT_SEAL_SECRET
    if not name:
        raise SealKeyUnavailable("AUDIT_SEAL_SECRET is not set: audit records cannot be sealed")
    value = _provider().get(name, max_age=SEAL_KEY_MAX_AGE_S)
    return str(value).encode("utf-8")


def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    client = clients.secretsmanager()
    with _key_lock:
        held = _providers.get(id(client))
        if held is None or held[0] is not client:
            _providers.clear()  # a new client: the old one's cache is another account's
            held = _providers[id(client)] = (client, SecretsProvider(boto3_client=client))
        return held[1]


def forget_seal_key() -> None:
    """Drop the cached key (tests, or after a rotation that must apply at once)."""
    with _key_lock:
        for _, provider in _providers.values():
            provider.clear_cache()


def _json_value(value: Any) -> Any:
    """The value as it reads back from a JSON attribute (tuples become lists, keys strings)."""
    return None if value is None else json.loads(json.dumps(value))


def record(
    tx: dynamo.Tx,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    project_id: str | None,
    before: Any = None,
    after: Any = None,
    *,
    actor_project_role: str | None = None,
    counts: Mapping[str, int] | None = None,
    affected_ids_key: str | None = None,
    affected_ids_sha256: str | None = None,
    audit_id: str | None = None,
) -> str:
    """Add the sealed audit record of one change to ``tx``; returns its id.

    ``actor_project_role`` defaults to the role the request's guard found for the actor.
    The put is conditional on the id being new, so a record is never overwritten.
    """
    at = utcnow()
    audit_id = audit_id or ids.new_id("aud")
    cfg = settings()
    fields: dict[str, Any] = {
        "audit_id": audit_id,
        "project_id": project_id,
        "actor_id": actor.user_id,
        "actor_role": actor.role,
        "actor_project_role": actor_project_role or actor.project_role,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "before": _json_value(before),
        "after": _json_value(after),
        "counts": {str(k): int(v) for k, v in counts.items()} if counts is not None else None,
        "affected_ids_key": affected_ids_key,
        "affected_ids_sha256": affected_ids_sha256,
        "request_id": actor.request_id,
        "source_ip": actor.source_ip,
        "user_agent": actor.user_agent,
        "at": at,
    }
    digest = domain.record_digest(fields)
    item = dynamo.audit().AuditItem(
        PK=keys.audit_pk(project_id),
        SK=keys.time_sort_key(at, audit_id),
        GSI1PK=keys.audit_actor_pk(actor.user_id),
        GSI1SK=keys.time_sort_key(at, audit_id),
        GSI2PK=keys.audit_target_pk(target_type, target_id),
        GSI2SK=keys.time_sort_key(at, audit_id),
        **fields,
        seal=domain.seal(seal_key(), digest),
        expires_at=datetime.now(UTC) + timedelta(days=cfg.AUDIT_TTL_DAYS) if cfg.AUDIT_TTL_DAYS else None,
    )
    tx.put(item, condition="attribute_not_exists(#pk)", names={"#pk": keys.PK})
    return audit_id


def record_bulk(
    tx: dynamo.Tx,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    project_id: str | None,
    counts: Mapping[str, int],
    affected_ids: Sequence[str],
    *,
    actor_project_role: str | None = None,
    after: Any = None,
) -> str:
    """Audit a bulk operation with ONE record: counts, and a pointer to its affected ids.

    The ids go first to the exports bucket as a JSON list (``audit-evidence/<scope>/<audit
    id>.json``, kept as long as audit records), then the record naming that key and sealing
    the list's SHA-256 joins ``tx``. If ``tx`` then fails, the list stays behind unreferenced:
    harmless, and never the other way round (a record pointing nowhere).
    """
    audit_id = ids.new_id("aud")
    ids_key = keys.audit_bulk_ids_key(keys.audit_scope(project_id), audit_id)
    body = json.dumps(list(affected_ids), separators=(",", ":")).encode()
    storage.upload(io.BytesIO(body), settings().EXPORT_BUCKET, ids_key, "application/json")
    return record(
        tx,
        actor,
        action,
        target_type,
        target_id,
        project_id,
        after=after,
        actor_project_role=actor_project_role,
        counts=counts,
        affected_ids_key=ids_key,
        affected_ids_sha256=hashlib.sha256(body).hexdigest(),
        audit_id=audit_id,
    )


def record_alone(
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    project_id: str | None,
    after: Any = None,
) -> str:
    """Write the sealed record of an action that changes no item (e.g. handing out an upload URL)."""
    tx = dynamo.Tx()
    audit_id = record(tx, actor, action, target_type, target_id, project_id, after=after)
    tx.commit()
    return audit_id


# ---- reading records (low-level items: stream images and Query results) ----------------------


def _plain(value: Any) -> Any:
    """A deserialized attribute as plain JSON-able data (forged items may hold any type)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return value


_DESERIALIZER: Any = None


def _attribute(raw: Mapping[str, Any], name: str) -> Any:
    global _DESERIALIZER
    value = raw.get(name)
    if value is None:
        return None
    if name in JSON_FIELDS and "S" in value:
        try:
            return json.loads(value["S"], strict=False)
        except ValueError:
            return value["S"]
    if _DESERIALIZER is None:
        from boto3.dynamodb.types import TypeDeserializer

        _DESERIALIZER = TypeDeserializer()
    return _plain(_DESERIALIZER.deserialize(value))


def scope_of(raw: Mapping[str, Any]) -> str | None:
    """The chain scope of an audit-table item: its record partition's (None: not a record).

    Every item of a record partition (``PROJECT#<pid>``, ``GLOBAL``) is an audit record,
    whatever its other attributes say: a forged item is still a record to chain and flag.
    """
    pk = raw.get(keys.PK, {}).get("S")
    return keys.audit_scope_of_pk(pk) if isinstance(pk, str) else None


def sealed_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The sealed fields of a low-level audit item, as the writer sealed them."""
    return {name: _attribute(raw, name) for name in (*domain.SEALED_FIELDS, *domain.OPTIONAL_SEALED_FIELDS)}


def chain_seq(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("chain_seq", {}).get("N")
    return int(value) if value is not None else None


def string(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name, {}).get("S")
    return str(value) if value is not None else None


def record_from_item(raw: Mapping[str, Any]) -> domain.AuditRecord:
    """The API model of a low-level audit item (Query/stream form)."""
    fields = sealed_fields(raw)
    counts = fields.get("counts")
    return domain.AuditRecord.model_validate(
        fields
        | {
            "counts": counts if isinstance(counts, dict) else None,
            "chain_seq": chain_seq(raw),
            "prev_hash": string(raw, "prev_hash"),
            "hash": string(raw, "hash"),
        }
    )


def record_from_model(item: Any) -> domain.AuditRecord:
    """The API model of a pynamodb ``AuditItem``."""
    return domain.AuditRecord(
        audit_id=item.audit_id,
        project_id=item.project_id,
        actor_id=item.actor_id,
        actor_role=item.actor_role,
        actor_project_role=item.actor_project_role,
        action=item.action,
        target_type=item.target_type,
        target_id=item.target_id,
        before=item.before,
        after=item.after,
        counts=item.counts,
        affected_ids_key=item.affected_ids_key,
        affected_ids_sha256=item.affected_ids_sha256,
        request_id=item.request_id,
        source_ip=item.source_ip,
        user_agent=item.user_agent,
        at=item.at,
        chain_seq=int(item.chain_seq) if item.chain_seq is not None else None,
        prev_hash=item.prev_hash,
        hash=item.hash,
    )
