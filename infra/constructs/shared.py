"""Shared resources addressed by their spec names from the stacks that use them.

Tables, buckets and the bus have deterministic names (``infra.spec``), so the
compute stacks import them by name instead of through cross-stack references:
no stack exports what another stack's grants need, the ARNs in IAM policies are
readable (``...:table/serval-dev-tasks``), and deployment order comes from
explicit stack dependencies (see ``infra/app.py``). Queues of another stack
(a ``sends_to`` target), the secrets and another stack's state machines are imported
by name the same way. Only
values that are not deterministic (the user pool id, a table's stream ARN) cross
stacks as references.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.naming import construct_id
from infra.spec import QueueRef, ServalSpec


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
        self.secrets: dict[str, secretsmanager.ISecret] = {
            s.id: secretsmanager.Secret.from_secret_name_v2(self, construct_id(s.id, "Secret"), s.name)
            for s in spec.secrets.values()
        }
        self._spec = spec
        self._queues: dict[QueueRef, sqs.IQueue] = {}
        self._state_machines: dict[str, sfn.IStateMachine] = {}

    def state_machine(self, machine_id: str) -> sfn.IStateMachine:
        """The spec state machine ``machine_id``, imported by its spec name."""
        if machine_id not in self._state_machines:
            self._state_machines[machine_id] = sfn.StateMachine.from_state_machine_name(
                self, construct_id(machine_id, "StateMachine"), self._spec.state_machines[machine_id].name
            )
        return self._state_machines[machine_id]

    def queue(self, ref: QueueRef) -> sqs.IQueue:
        """The queue (or dead-letter queue) ``ref`` names, imported by its spec name."""
        if ref not in self._queues:
            stack = Stack.of(self)
            queue_spec = self._spec.queues[ref.queue]
            name = queue_spec.dlq_name if ref.dead_letter else queue_spec.name
            self._queues[ref] = sqs.Queue.from_queue_attributes(
                self,
                construct_id(ref.queue, "DeadLetterQueue" if ref.dead_letter else "Queue"),
                queue_arn=stack.format_arn(
                    service="sqs", resource=name, arn_format=ArnFormat.NO_RESOURCE_NAME
                ),
                queue_name=name,
                queue_url=f"https://sqs.{stack.region}.{stack.url_suffix}/{stack.account}/{name}",
            )
        return self._queues[ref]
