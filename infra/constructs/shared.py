"""Shared resources addressed by their spec names from the stacks that use them.

Tables, buckets and the bus have deterministic names (``infra.spec``), so the
compute stacks import them by name instead of through cross-stack references:
no stack exports what another stack's grants need, the ARNs in IAM policies are
readable (``...:table/serval-dev-tasks``), and deployment order comes from
explicit stack dependencies (see ``infra/app.py``). Only values that are not
deterministic (the user pool id, a table's stream ARN) cross stacks as references.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.naming import construct_id
from infra.spec import ServalSpec


class SharedResources(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        self.tables: dict[str, dynamodb.ITable] = {
            t.id: dynamodb.Table.from_table_attributes(
                self,
                construct_id(t.id, "Table"),
                table_name=t.name,
                global_indexes=[index.name for index in t.indexes],
            )
            for t in spec.tables.values()
        }
        self.buckets: dict[str, s3.IBucket] = {
            b.id: s3.Bucket.from_bucket_name(self, construct_id(b.id, "Bucket"), b.name)
            for b in spec.buckets.values()
        }
        self.bus = events.EventBus.from_event_bus_name(self, "Bus", spec.event_bus_name)
