"""An SQS queue with its dead-letter queue, both from one QueueSpec."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.spec import QueueSpec


class ServalQueue(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, queue_spec: QueueSpec) -> None:
        super().__init__(scope, construct_id_)
        retention = Duration.seconds(queue_spec.retention_s)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name=queue_spec.dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_spec.name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=retention,
            visibility_timeout=Duration.seconds(queue_spec.visibility_timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=queue_spec.max_receive_count
            ),
        )
