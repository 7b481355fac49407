"""Audit records: built here and written inside the same transaction as the change they describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from serval import ids, keys
from serval.adapters import dynamo
from serval.domain.actor import Actor
from serval.domain.models import utcnow
from serval.settings import settings


def record(
    tx: dynamo.Tx,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    project_id: str | None,
    before: Any = None,
    after: Any = None,
) -> str:
    """Add the audit record of one change to ``tx``; returns its id.

    The put is conditional on the id being new, so a record is never overwritten.
    """
    at = utcnow()
    audit_id = ids.new_id("aud")
    cfg = settings()
    item = dynamo.audit().AuditItem(
        PK=keys.audit_pk(project_id),
        SK=keys.time_sort_key(at, audit_id),
        GSI1PK=keys.audit_actor_pk(actor.user_id),
        GSI1SK=keys.time_sort_key(at, audit_id),
        GSI2PK=keys.audit_target_pk(target_type, target_id),
        GSI2SK=keys.time_sort_key(at, audit_id),
        audit_id=audit_id,
        project_id=project_id,
        actor_id=actor.user_id,
        actor_role=actor.role,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        request_id=actor.request_id,
        source_ip=actor.source_ip,
        user_agent=actor.user_agent,
        at=at,
        expires_at=datetime.now(UTC) + timedelta(days=cfg.AUDIT_TTL_DAYS) if cfg.AUDIT_TTL_DAYS else None,
    )
    tx.put(item, condition="attribute_not_exists(#pk)", names={"#pk": keys.PK})
    return audit_id
