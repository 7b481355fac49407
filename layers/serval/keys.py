"""Every DynamoDB key Serval writes is built here, and only here.

Tasks table (single-table design, see docs/data-model.md):

| item        | PK                  | SK                        | GSI1 (by status)                 | GSI2 (by time)               |
|-------------|---------------------|---------------------------|----------------------------------|------------------------------|
| project     | PROJECT#<pid>       | PROJECT                   | PROJECTS / <created>#<pid>       |                              |
| task        | PROJECT#<pid>       | TASK#<tid>                | PROJECT#<pid>#STATUS#<s> / <c>#<tid> | PROJECT#<pid>#TASKS / <c>#<tid> |
| tag link    | PROJECT#<pid>       | TAG#<tag>#<tid>           |                                  |                              |
| annotation  | PROJECT#<pid>       | ANNOTATION#<tid>#<aid>    |                                  |                              |
| import      | PROJECT#<pid>       | IMPORT#<iid>              |                                  | PROJECT#<pid>#IMPORTS / <c>#<iid> |
| counter     | PROJECT#<pid>       | COUNTER#<shard>           |                                  |                              |

Audit table: PK=PROJECT#<pid> (or GLOBAL), SK=<time>#<audit id>; GSI1 by actor, GSI2 by target.
"""

from __future__ import annotations

PK = "PK"
SK = "SK"
GSI1 = "GSI1"
GSI1PK = "GSI1PK"
GSI1SK = "GSI1SK"
GSI2 = "GSI2"
GSI2PK = "GSI2PK"
GSI2SK = "GSI2SK"
ENTITY = "entity"
TTL_ATTRIBUTE = "expires_at"

COUNTER_SHARDS = 8
GLOBAL_SCOPE = "GLOBAL"


def project_pk(project_id: str) -> str:
    return f"PROJECT#{project_id}"


PROJECT_SK = "PROJECT"
PROJECTS_GSI1PK = "PROJECTS"


def task_sk(task_id: str) -> str:
    return f"TASK#{task_id}"


def status_gsi1pk(project_id: str, status: str) -> str:
    return f"PROJECT#{project_id}#STATUS#{status}"


def tasks_gsi2pk(project_id: str) -> str:
    return f"PROJECT#{project_id}#TASKS"


def time_sort_key(created_at: str, item_id: str) -> str:
    """Sort key that orders by creation time, then id (stable for cursors)."""
    return f"{created_at}#{item_id}"


def tag_sk_prefix(tag: str) -> str:
    return f"TAG#{tag}#"


def tag_sk(tag: str, task_id: str) -> str:
    return f"{tag_sk_prefix(tag)}{task_id}"


def annotation_sk_prefix(task_id: str) -> str:
    return f"ANNOTATION#{task_id}#"


def annotation_sk(task_id: str, annotation_id: str) -> str:
    return f"{annotation_sk_prefix(task_id)}{annotation_id}"


def import_sk(import_id: str) -> str:
    return f"IMPORT#{import_id}"


def imports_gsi2pk(project_id: str) -> str:
    return f"PROJECT#{project_id}#IMPORTS"


COUNTER_SK_PREFIX = "COUNTER#"


def counter_sk(shard: int) -> str:
    return f"{COUNTER_SK_PREFIX}{shard:02d}"


def counter_shard(item_id: str) -> int:
    """Deterministic shard for an item, so concurrent writers spread over shards."""
    return sum(item_id.encode()) % COUNTER_SHARDS


def audit_pk(project_id: str | None) -> str:
    return project_pk(project_id) if project_id else GLOBAL_SCOPE


def audit_actor_pk(actor_id: str) -> str:
    return f"ACTOR#{actor_id}"


def audit_target_pk(target_type: str, target_id: str) -> str:
    return f"TARGET#{target_type}#{target_id}"
