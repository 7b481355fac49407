"""pynamodb item models for the tasks table (single-table) and the audit table.

Item models are separate from the domain's API models; ``adapters.mapping`` maps
between them explicitly. The table name comes from the invocation's settings, so
the model classes are built per table name (and cached).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from serval import keys
from serval.adapters.clients import BUDGETS, install_deadline_hook
from serval.domain.limits import stored_json


class Utf8JSONAttribute(JSONAttribute):
    """A JSON attribute stored compact and as UTF-8 (``domain.limits.stored_json``): non-ASCII
    text costs its UTF-8 bytes, not a ``\\u`` escape of 6 to 12. Reads any JSON text."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else stored_json(value)


def _meta(table_name: str, budget: str, index_name: str | None = None) -> type:
    install_deadline_hook()  # before pynamodb creates its botocore sessions
    calls = BUDGETS[budget]
    attrs: dict[str, Any] = {
        "table_name": table_name,
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "connect_timeout_seconds": calls.connect_timeout_s,
        "read_timeout_seconds": calls.read_timeout_s,
        "max_retry_attempts": calls.max_attempts - 1,  # pynamodb counts the retries
    }
    if index_name:
        attrs |= {"index_name": index_name, "projection": AllProjection()}
    return type("Meta", (), attrs)


def _index(table_name: str, budget: str, name: str, pk: str, sk: str) -> GlobalSecondaryIndex[Any]:
    cls = type(
        f"{name}Index",
        (GlobalSecondaryIndex,),
        {
            "Meta": _meta(table_name, budget, name),
            pk: UnicodeAttribute(hash_key=True),
            sk: UnicodeAttribute(range_key=True),
        },
    )
    return cls()


class TaskTableModels:
    """The item classes of one tasks table."""

    def __init__(self, table_name: str, budget: str = "worker") -> None:
        self.table_name = table_name
        meta = _meta(table_name, budget)

        class Item(Model):
            Meta = meta  # type: ignore[assignment]  # built per table name
            PK = UnicodeAttribute(hash_key=True)
            SK = UnicodeAttribute(range_key=True)
            entity = DiscriminatorAttribute()
            GSI1PK = UnicodeAttribute(null=True)
            GSI1SK = UnicodeAttribute(null=True)
            GSI2PK = UnicodeAttribute(null=True)
            GSI2SK = UnicodeAttribute(null=True)
            by_status = _index(table_name, budget, keys.GSI1, keys.GSI1PK, keys.GSI1SK)
            by_time = _index(table_name, budget, keys.GSI2, keys.GSI2PK, keys.GSI2SK)

        class ProjectItem(Item, discriminator="project"):
            project_id = UnicodeAttribute()
            name = UnicodeAttribute()
            description = UnicodeAttribute(default="")
            media_types = ListAttribute(of=UnicodeAttribute)
            label_config = Utf8JSONAttribute()
            settings = Utf8JSONAttribute()
            status = UnicodeAttribute()
            created_by = UnicodeAttribute()
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            version = NumberAttribute(default=1)

        class TaskItem(Item, discriminator="task"):
            project_id = UnicodeAttribute()
            task_id = UnicodeAttribute()
            data = Utf8JSONAttribute()
            media_type = UnicodeAttribute()
            metadata = Utf8JSONAttribute(null=True)
            tags = ListAttribute(of=UnicodeAttribute, null=True)
            priority = NumberAttribute(default=0)
            status = UnicodeAttribute()
            predictions = Utf8JSONAttribute(null=True)
            has_prediction = BooleanAttribute(default=False)
            external_id = UnicodeAttribute(null=True)
            import_id = UnicodeAttribute(null=True)
            source = Utf8JSONAttribute(null=True)
            annotation_count = NumberAttribute(default=0)
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            version = NumberAttribute(default=1)
            # the task's execution: when it took an active-window slot, and when it gave it back
            execution_started_at = UnicodeAttribute(null=True)
            execution_ended_at = UnicodeAttribute(null=True)
            # queue and review (serval.adapters.queue): never mapped to the API's Task
            label_token = UnicodeAttribute(null=True)
            review_token = UnicodeAttribute(null=True)
            execution_name = UnicodeAttribute(null=True)  # the execution that issued the token
            queue_key = UnicodeAttribute(null=True)  # the GSI1SK the task holds while queued
            lease_owner = UnicodeAttribute(null=True)
            lease_until = NumberAttribute(null=True)  # epoch seconds
            assignee = UnicodeAttribute(null=True)
            assigned_until = NumberAttribute(null=True)  # epoch seconds: then anyone may take it
            GSI3PK = UnicodeAttribute(null=True)  # set with assignee (keys.assignee_gsi3pk)
            GSI3SK = UnicodeAttribute(null=True)
            # the outbox: a step's result committed with the change that produced it and not yet
            # delivered to the execution ({"step", "output"}), and its place in GSI4 (keys.repair_gsi4pk)
            handoff = Utf8JSONAttribute(null=True)
            GSI4PK = UnicodeAttribute(null=True)
            GSI4SK = UnicodeAttribute(null=True)
            annotators = ListAttribute(of=UnicodeAttribute, null=True)
            round_annotation_ids = ListAttribute(of=UnicodeAttribute, null=True)
            skipped_by = ListAttribute(of=UnicodeAttribute, null=True)
            rework = NumberAttribute(null=True)
            reviewer = UnicodeAttribute(null=True)
            # the last review's rejection (comment, reviewer, at, annotation_ids); removed on approval
            last_rejection = Utf8JSONAttribute(null=True)
            # consensus and gold (serval.logic.quality)
            agreement = NumberAttribute(null=True)  # of the last completed overlap round
            accepted_by = UnicodeAttribute(null=True)  # "consensus" when no review was needed
            # the completed round's answer, and the annotation its approval accepted (what exports ship)
            answer_annotation_id = UnicodeAttribute(null=True)
            accepted_annotation_id = UnicodeAttribute(null=True)
            gold = Utf8JSONAttribute(null=True)  # the known results of a gold task
            gold_answered_by = ListAttribute(of=UnicodeAttribute, null=True)

        class TagLinkItem(Item, discriminator="tag"):
            task_id = UnicodeAttribute()
            tag = UnicodeAttribute()

        class AnnotationItem(Item, discriminator="annotation"):
            project_id = UnicodeAttribute()
            task_id = UnicodeAttribute()
            annotation_id = UnicodeAttribute()
            author = UnicodeAttribute()
            results = Utf8JSONAttribute()
            lead_time_s = NumberAttribute(default=0)
            label_config_version = NumberAttribute()
            created_at = UnicodeAttribute()
            source = UnicodeAttribute(null=True)  # absent: human
            model_version = UnicodeAttribute(null=True)
            accepted_by = UnicodeAttribute(null=True)

        class ImportItem(Item, discriminator="import"):
            project_id = UnicodeAttribute()
            import_id = UnicodeAttribute()
            source = UnicodeAttribute()
            bucket = UnicodeAttribute(null=True)
            key = UnicodeAttribute(null=True)
            status = UnicodeAttribute()
            lines_total = NumberAttribute(default=0)
            lines_committed = NumberAttribute(default=0)
            tasks_created = NumberAttribute(default=0)
            duplicates = NumberAttribute(default=0)
            errors = NumberAttribute(default=0)
            # lines whose tasks DynamoDB refused at write time, counted by the checkpoints
            # (with the first few line errors, for the report): refusals survive a resume
            refused = NumberAttribute(default=0)
            refused_lines = ListAttribute(of=UnicodeAttribute, null=True)
            error_report_key = UnicodeAttribute(null=True)
            # a manifest's byte ranges (adapters.import_ranges): how many, how many are done,
            # whether every range's message was sent, and their size
            ranges_total = NumberAttribute(default=1)
            ranges_done = NumberAttribute(default=0)
            ranges_queued = BooleanAttribute(null=True)
            range_bytes = NumberAttribute(null=True)  # the range size the import was planned with
            lease_until = NumberAttribute(default=0)
            lease_owner = UnicodeAttribute(null=True)
            created_by = UnicodeAttribute(null=True)
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            completed_at = UnicodeAttribute(null=True)
            request_fingerprint = UnicodeAttribute(null=True)  # an API create's body (Idempotency-Key)

        class ImportRangeItem(Item, discriminator="import_range"):
            """One byte range of a manifest import: its lease, its checkpoint and its counts."""

            project_id = UnicodeAttribute()
            import_id = UnicodeAttribute()
            index = NumberAttribute()
            start = NumberAttribute()
            end = NumberAttribute()
            status = UnicodeAttribute()  # running | done
            # the offset of the last line whose task is committed (-1: none yet)
            committed = NumberAttribute(default=-1)
            tasks_created = NumberAttribute(default=0)
            duplicates = NumberAttribute(default=0)
            refused = NumberAttribute(default=0)
            refused_lines = ListAttribute(of=UnicodeAttribute, null=True)
            # set when the range is done: its lines (blank ones too, for line numbers), the
            # lines parsed, the errors among them, and where its error lines are
            lines = NumberAttribute(default=0)
            parsed = NumberAttribute(default=0)
            errors = NumberAttribute(default=0)
            error_part_key = UnicodeAttribute(null=True)
            lease_until = NumberAttribute(default=0)
            lease_owner = UnicodeAttribute(null=True)
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()

        class MemberItem(Item, discriminator="member"):
            """A user's role in a project; GSI1 lists a user's projects."""

            project_id = UnicodeAttribute()
            user_id = UnicodeAttribute()
            role = UnicodeAttribute()
            added_by = UnicodeAttribute()
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()

        class UserItem(Item, discriminator="user"):
            """The user directory: Serval's record of a Cognito user; GSI1 lists users by email."""

            user_id = UnicodeAttribute()
            username = UnicodeAttribute()
            email = UnicodeAttribute()
            groups = ListAttribute(of=UnicodeAttribute)
            enabled = BooleanAttribute(default=True)
            created_by = UnicodeAttribute()
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            version = NumberAttribute(default=1)

        class CounterItem(Item, discriminator="counter"):
            """One shard of a project's per-status counters: attributes ``n_<status>``."""

        class ExternalIdItem(Item, discriminator="external_id"):
            """Claims an external id within a project, so re-sending it never duplicates."""

            task_id = UnicodeAttribute()

        class JobItem(Item, discriminator="job"):
            """An async job (audit export, ...): queued -> running -> succeeded | failed.

            ``done``/``failed`` are top-level numbers so progress can be ADDed atomically.
            """

            project_id = UnicodeAttribute()
            job_id = UnicodeAttribute()
            kind = UnicodeAttribute()
            params = Utf8JSONAttribute()
            status = UnicodeAttribute()
            done = NumberAttribute(default=0)
            failed = NumberAttribute(default=0)
            result_key = UnicodeAttribute(null=True)
            error = UnicodeAttribute(null=True)
            attempts = NumberAttribute(default=0)
            lease_until = NumberAttribute(default=0)
            lease_owner = UnicodeAttribute(null=True)
            # a fanned-out dataset export: its shard count and the shards gathered so far
            shards = NumberAttribute(null=True)
            shards_done = NumberSetAttribute(null=True)
            created_by = UnicodeAttribute()
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            started_at = UnicodeAttribute(null=True)
            finished_at = UnicodeAttribute(null=True)

        class WebhookItem(Item, discriminator="webhook"):
            """A webhook subscription (``adapters.webhooks``), in its scope's own partition. Its
            secrets never leave the adapter except to sign a delivery."""

            webhook_id = UnicodeAttribute()
            scope = UnicodeAttribute()  # project | org
            project_id = UnicodeAttribute(null=True)  # None: the organisation's
            url = UnicodeAttribute()
            description = UnicodeAttribute(default="")
            event_types = ListAttribute(of=UnicodeAttribute, default=list)
            status = UnicodeAttribute()
            disabled_reason = UnicodeAttribute(null=True)
            consecutive_failures = NumberAttribute(default=0)
            failing_since = UnicodeAttribute(null=True)
            secret = UnicodeAttribute()
            previous_secret = UnicodeAttribute(null=True)
            previous_secret_until = NumberAttribute(null=True)  # epoch seconds
            created_by = UnicodeAttribute()
            created_at = UnicodeAttribute()
            updated_at = UnicodeAttribute()
            version = NumberAttribute(default=1)

        class ActivityItem(Item, discriminator="activity"):
            """One user's annotation counters for one UTC day in a project (all ADDed atomically).

            Besides these, the item holds the lead-time histogram as top-level numbers
            ``h00``..``h11`` (see ``serval.domain.activity``); they are read raw.
            """

            project_id = UnicodeAttribute()
            user_id = UnicodeAttribute()
            day = UnicodeAttribute()
            annotations = NumberAttribute(default=0)
            lead_time_s = NumberAttribute(default=0)
            last_at = UnicodeAttribute(null=True)

        self.Item = Item
        self.ProjectItem = ProjectItem
        self.TaskItem = TaskItem
        self.TagLinkItem = TagLinkItem
        self.AnnotationItem = AnnotationItem
        self.ImportItem = ImportItem
        self.ImportRangeItem = ImportRangeItem
        self.CounterItem = CounterItem
        self.MemberItem = MemberItem
        self.UserItem = UserItem
        self.ExternalIdItem = ExternalIdItem
        self.JobItem = JobItem
        self.ActivityItem = ActivityItem
        self.WebhookItem = WebhookItem


class AuditTableModels:
    """The audit table's records. Chain heads (``PK=CHAIN#<scope>``, ``SK=HEAD``) share the
    table but are written and read by ``adapters.audit_chain`` with the low-level client."""

    def __init__(self, table_name: str, budget: str = "worker") -> None:
        self.table_name = table_name

        class AuditItem(Model):
            Meta = _meta(table_name, budget)  # type: ignore[assignment]  # built per table name
            PK = UnicodeAttribute(hash_key=True)
            SK = UnicodeAttribute(range_key=True)
            entity = UnicodeAttribute(default="audit")
            GSI1PK = UnicodeAttribute()
            GSI1SK = UnicodeAttribute()
            GSI2PK = UnicodeAttribute()
            GSI2SK = UnicodeAttribute()
            # GSI3 (chain order) is set by the chainer only: sparse, chained records only
            GSI3PK = UnicodeAttribute(null=True)
            GSI3SK = UnicodeAttribute(null=True)
            by_actor = _index(table_name, budget, keys.GSI1, keys.GSI1PK, keys.GSI1SK)
            by_target = _index(table_name, budget, keys.GSI2, keys.GSI2PK, keys.GSI2SK)
            by_chain = _index(table_name, budget, keys.GSI3, keys.GSI3PK, keys.GSI3SK)
            audit_id = UnicodeAttribute()
            project_id = UnicodeAttribute(null=True)
            actor_id = UnicodeAttribute()
            actor_role = UnicodeAttribute()
            actor_project_role = UnicodeAttribute(null=True)
            action = UnicodeAttribute()
            target_type = UnicodeAttribute()
            target_id = UnicodeAttribute()
            before = Utf8JSONAttribute(null=True)
            after = Utf8JSONAttribute(null=True)
            counts = Utf8JSONAttribute(null=True)
            affected_ids_key = UnicodeAttribute(null=True)
            affected_ids_sha256 = UnicodeAttribute(null=True)
            request_id = UnicodeAttribute(null=True)
            source_ip = UnicodeAttribute(null=True)
            user_agent = UnicodeAttribute(null=True)
            at = UnicodeAttribute()
            seal = UnicodeAttribute(null=True)  # null only on records no writer made (forged)
            chain_seq = NumberAttribute(null=True)
            prev_hash = UnicodeAttribute(null=True)
            hash = UnicodeAttribute(null=True)
            expires_at = TTLAttribute(null=True)

        self.AuditItem = AuditItem


@lru_cache(maxsize=8)
def tasks_models(table_name: str, budget: str = "worker") -> TaskTableModels:
    return TaskTableModels(table_name, budget)


@lru_cache(maxsize=8)
def audit_models(table_name: str, budget: str = "worker") -> AuditTableModels:
    return AuditTableModels(table_name, budget)
