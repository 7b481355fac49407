"""Every DynamoDB key Serval writes is built here, and only here.

Tasks table (single-table design, see docs/data-model.md):

| item        | PK                  | SK                        | GSI1 (by status)                 | GSI2 (by time)               |
|-------------|---------------------|---------------------------|----------------------------------|------------------------------|
| project     | PROJECT#<pid>       | PROJECT                   | PROJECTS / <created>#<pid>       |                              |
| task        | PROJECT#<pid>       | TASK#<tid>                | PROJECT#<pid>#STATUS#<s> / <c>#<tid> | PROJECT#<pid>#TASKS / <c>#<tid> |
| tag link    | PROJECT#<pid>       | TAG#<tag>#<tid>           |                                  |                              |
| annotation  | PROJECT#<pid>       | ANNOTATION#<tid>#<aid>    |                                  |                              |
| import      | PROJECT#<pid>       | IMPORT#<iid>              |                                  | PROJECT#<pid>#IMPORTS / <c>#<iid> |
| import range| PROJECT#<pid>       | IMPORT#<iid>#RANGE#<n>    |                                  |                              |
| counter     | PROJECT#<pid>       | COUNTER#<shard>           |                                  |                              |
| job         | PROJECT#<pid>       | JOB#<job id>              |                                  | PROJECT#<pid>#JOBS / <c>#<jid> |
| activity    | PROJECT#<pid>       | ACTIVITY#<day>#<user id>  |                                  |                              |
| quality     | PROJECT#<pid>       | QUALITY#<user id>         |                                  |                              |
| gold task   | PROJECT#<pid>       | TASK#<tid>                | PROJECT#<pid>#GOLD / its GSI1SK  | as a task                    |

A task reserved for a member (``assignee``) is also in GSI3 (sparse): GSI3PK=ASSIGNEE#<user id>,
GSI3SK=<pid>#<tid>, so a member's reservations are found by key, per project or in all of them.

A task with a step handoff committed but not yet delivered to its execution is also in GSI4
(sparse, the outbox): GSI4PK=REPAIR#<pid>, GSI4SK=<due, epoch seconds>#<tid>, so the reconciler
finds every handoff overdue by key, and ``/stats`` counts them.

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
GSI3 = "GSI3"
GSI3PK = "GSI3PK"
GSI3SK = "GSI3SK"
GSI4 = "GSI4"
GSI4PK = "GSI4PK"
GSI4SK = "GSI4SK"
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


def import_range_sk_prefix(import_id: str) -> str:
    return f"{import_sk(import_id)}#RANGE#"


def import_range_sk(import_id: str, index: int) -> str:
    """One byte range of a manifest import (ranges sort in file order)."""
    return f"{import_range_sk_prefix(import_id)}{index:05d}"


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


MEMBER_SK_PREFIX = "MEMBER#"


def member_sk(user_id: str) -> str:
    return f"{MEMBER_SK_PREFIX}{user_id}"


def user_projects_gsi1pk(user_id: str) -> str:
    """GSI1 partition listing the projects a user belongs to."""
    return f"USER#{user_id}#PROJECTS"


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


USER_SK = "PROFILE"
USERS_GSI1PK = "USERS"


# ---- audit hash chain (audit table) ----------------------------------------------------------
# A scope is a project id, or GLOBAL for changes outside any project. Each scope has one
# chain: its records carry GSI3PK=CHAIN#<scope>, GSI3SK=<zero-padded seq>, and a head item
# PK=CHAIN#<scope>, SK=HEAD holds the last linked seq and hash.

CHAIN_HEAD_SK = "HEAD"
CHAIN_SEQ_DIGITS = 20


def audit_scope(project_id: str | None) -> str:
    return project_id or GLOBAL_SCOPE


def audit_scope_pk(scope: str) -> str:
    """The audit partition of a scope (the inverse of :func:`audit_scope`)."""
    return audit_pk(None if scope == GLOBAL_SCOPE else scope)


def chain_pk(scope: str) -> str:
    return f"CHAIN#{scope}"


def chain_seq_sk(seq: int) -> str:
    """Zero-padded, so GSI3 sorts a chain by sequence number."""
    return f"{seq:0{CHAIN_SEQ_DIGITS}d}"


# The data bucket holds each project's uploads and media under ``projects/<project_id>/``: the
# only keys its tasks may reference and the only ones the API presigns for the browser.
DATA_PROJECTS_PREFIX = "projects/"


def project_data_prefix(project_id: str) -> str:
    """The data bucket's prefix of one project's uploads and media."""
    return f"{DATA_PROJECTS_PREFIX}{project_id}/"


# The exports bucket holds temporary objects under these prefixes (expired by its lifecycle
# after ``export_expiration_days``) and audit evidence under AUDIT_EVIDENCE_PREFIX, kept as
# long as the audit records that point at it (``audit_ttl_days``; 0 keeps it forever).
EXPORT_TEMPORARY_PREFIXES = ("audit-exports/", "bulk/", "dataset-exports/")
AUDIT_EVIDENCE_PREFIX = "audit-evidence/"


def import_error_report_key(project_id: str, import_id: str) -> str:
    """S3 key (data bucket) of an import's error report, one JSON line per refused manifest line."""
    return f"reports/{project_id}/imports/{import_id}/errors.jsonl"


def import_range_errors_key(project_id: str, import_id: str, index: int) -> str:
    """S3 key (data bucket) of one byte range's error lines, gathered into the report at the end."""
    return f"reports/{project_id}/imports/{import_id}/ranges/{index:05d}.jsonl"


def audit_bulk_ids_key(scope: str, audit_id: str) -> str:
    """S3 key (exports bucket) of the JSON list of ids a bulk operation's audit record covers."""
    return f"{AUDIT_EVIDENCE_PREFIX}{scope}/{audit_id}.json"


# ---- jobs and activity counters ------------------------------------------------------------

JOB_SK_PREFIX = "JOB#"


def job_sk(job_id: str) -> str:
    return f"{JOB_SK_PREFIX}{job_id}"


def jobs_gsi2pk(project_id: str) -> str:
    return f"PROJECT#{project_id}#JOBS"


ACTIVITY_SK_PREFIX = "ACTIVITY#"


def activity_sk(day: str, user_id: str) -> str:
    """A user's activity counter for one UTC day (``yyyy-mm-dd``) in a project."""
    return f"{ACTIVITY_SK_PREFIX}{day}#{user_id}"


def activity_sk_range(first_day: str, last_day: str) -> tuple[str, str]:
    """SK bounds (for BETWEEN) of every user's counters from ``first_day`` to ``last_day`` inclusive.

    ``$`` sorts right after ``#``, so ``ACTIVITY#<last_day>$`` is above every counter of that day.
    """
    return f"{ACTIVITY_SK_PREFIX}{first_day}#", f"{ACTIVITY_SK_PREFIX}{last_day}$"


def audit_scope_of_pk(pk: str) -> str | None:
    """The scope whose records live in audit partition ``pk`` (None: not a record partition)."""
    if pk == GLOBAL_SCOPE:
        return GLOBAL_SCOPE
    prefix = project_pk("")
    return pk[len(prefix) :] or None if pk.startswith(prefix) else None


WINDOW_SK = "WINDOW"  # a project's count of open task executions (its active window)


# ---- the labelling and review queues (GSI1SK of a task, by status; see serval.domain.queue) ----

PRIORITY_OFFSET = 1_000_000  # priorities lie in [-1e6, 1e6]: OFFSET - priority sorts highest first
SCORE_SCALE = 1_000_000
LEASE_SK_PREFIX = "L#"


def _arrival(created_at: str, position: int, task_id: str) -> str:
    """Creation order: time, then the task's position in its import (tasks of one call share a time)."""
    return f"{created_at}#{position:09d}#{task_id}"


def queue_sk_priority(priority: int, created_at: str, task_id: str, position: int = 0) -> str:
    """Highest priority first, then oldest first."""
    return f"P#{PRIORITY_OFFSET - priority:07d}#{_arrival(created_at, position, task_id)}"


def queue_sk_fifo(created_at: str, task_id: str, position: int = 0) -> str:
    return f"F#{_arrival(created_at, position, task_id)}"


def queue_sk_random(draw: str, task_id: str) -> str:
    """``draw`` is a random token fixed when the task enters the queue."""
    return f"R#{draw}#{task_id}"


def queue_sk_confidence(score: float, created_at: str, task_id: str, position: int = 0) -> str:
    """Lowest prediction score first (``score`` in [0, 1]), then oldest first."""
    return f"C#{round(score * SCORE_SCALE):07d}#{_arrival(created_at, position, task_id)}"


def lease_sk(lease_until: int, tiebreak: str) -> str:
    """GSI1SK of a leased task (and of a task in review): ordered by lease expiry, epoch seconds."""
    return f"{LEASE_SK_PREFIX}{lease_until:012d}#{tiebreak}"


def lease_sk_below(now: int) -> str:
    """Every lease key below this ended before ``now`` (a key range for ``GSI1SK < :k``)."""
    return f"{LEASE_SK_PREFIX}{now:012d}"


# ---- bulk operations -----------------------------------------------------------------------
# An Idempotency-Key of a bulk request is claimed by an item PK=PROJECT#<pid>,
# SK=BULKKEY#<sha256 of the key>, written in the job's create transaction.

BULK_KEY_SK_PREFIX = "BULKKEY#"


def bulk_key_sk(key_digest: str) -> str:
    return f"{BULK_KEY_SK_PREFIX}{key_digest}"


def bulk_ids_key(project_id: str, job_id: str) -> str:
    """S3 key (exports bucket) of a bulk request's id list, when too long for the job item."""
    return f"bulk/{project_id}/{job_id}.ids.json"


def bulk_work_key(project_id: str, job_id: str) -> str:
    """S3 key of a bulk job's resolved selection (the ids it works through, in order)."""
    return f"bulk/{project_id}/{job_id}.work.json"


def bulk_failed_key(project_id: str, job_id: str, offset: int) -> str:
    """S3 key of the ids that failed in the chunk of a bulk job starting at ``offset``."""
    return f"{bulk_failed_prefix(project_id, job_id)}{offset:09d}.json"


def bulk_failed_prefix(project_id: str, job_id: str) -> str:
    return f"bulk/{project_id}/{job_id}/failed/"


QUALITY_SK_PREFIX = "QUALITY#"


def quality_sk(user_id: str) -> str:
    """A member's quality counters in a project (gold answers, agreement, review rejections)."""
    return f"{QUALITY_SK_PREFIX}{user_id}"


def assignee_gsi3pk(user_id: str) -> str:
    """The GSI3 partition (tasks table) of the tasks reserved for a user, in every project."""
    return f"ASSIGNEE#{user_id}"


def assignee_gsi3sk(project_id: str, task_id: str) -> str:
    return f"{assignee_gsi3sk_prefix(project_id)}{task_id}"


def assignee_gsi3sk_prefix(project_id: str) -> str:
    return f"{project_id}#"


def gold_gsi1pk(project_id: str) -> str:
    """The GSI1 partition of a project's gold tasks (out of every status partition, so out of the queue)."""
    return f"PROJECT#{project_id}#GOLD"


# ---- webhooks --------------------------------------------------------------------------------
# Subscriptions live in the tasks table, in a partition of their own per scope (a project, or
# the organisation), so no query of a project's items ever meets one. The delivery log has a
# table of its own (no stream: a log row announces nothing).
WEBHOOK_SK_PREFIX = "WEBHOOK#"
ORG_WEBHOOKS_SCOPE = "ORG"


def webhooks_pk(project_id: str | None) -> str:
    """The partition of a scope's subscriptions: a project's, or (None) the organisation's."""
    return f"WEBHOOKS#{project_id or ORG_WEBHOOKS_SCOPE}"


def webhook_sk(webhook_id: str) -> str:
    return f"{WEBHOOK_SK_PREFIX}{webhook_id}"


def delivery_pk(webhook_id: str) -> str:
    """A subscription's delivery log: its attempts in time order."""
    return f"SUB#{webhook_id}"


def delivery_sk(attempted_at: str, event_id: str, attempt: int) -> str:
    return f"{attempted_at}#{event_id}#{attempt:03d}"


def event_deliveries_gsi1pk(event_id: str) -> str:
    """Every attempt to deliver one event, to any subscription."""
    return f"EVENT#{event_id}"


def repair_gsi4pk(project_id: str) -> str:
    """The GSI4 partition (tasks table) of a project's outbox: handoffs not yet delivered."""
    return f"REPAIR#{project_id}"


def repair_gsi4sk(due: int, task_id: str) -> str:
    """Ordered by when the handoff becomes overdue (epoch seconds)."""
    return f"{due:012d}#{task_id}"


def repair_gsi4sk_below(now: int) -> str:
    """Every outbox key below this was due before ``now`` (a key range for ``GSI4SK < :k``)."""
    return f"{now:012d}"
