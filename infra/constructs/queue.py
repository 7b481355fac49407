"""An SQS queue with its dead-letter queue, both from one QueueSpec (or the DLQ is another spec queue)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.spec import QueueSpec


class ServalQueue(Construct):
    """``dead_letter``: the queue of the spec's ``dead_letter_queue``, which then takes this
    queue's dead letters (no DLQ of its own is created)."""

    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        queue_spec: QueueSpec,
        dead_letter: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id_)
        retention = Duration.seconds(queue_spec.retention_s)
        if (dead_letter is None) != (queue_spec.dead_letter_queue is None):
            raise ValueError(f"queue {queue_spec.id}: pass the queue of its dead_letter_queue, and only then")
        self.dlq: sqs.IQueue = dead_letter or sqs.Queue(
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
