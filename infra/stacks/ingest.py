from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput
from aws_cdk import aws_sqs as sqs

from infra.constructs.function import event_source
from infra.constructs.ingest import UploadNotifications
from infra.constructs.queue import ServalQueue
from infra.constructs.shared import SharedResources
from infra.spec import FunctionSpec, ServalSpec, SqsTrigger
from infra.stacks.base import ServalStack

INGEST_QUEUE = "ingest"


class IngestStack(ServalStack):
    """S3 upload -> SQS (with DLQ) -> ingest function."""

    concern = "Ingest"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        spec = self.spec
        shared = SharedResources(self, "Shared", spec=spec)
        self.ingest = ServalQueue(self, "IngestQueue", queue_spec=spec.queues[INGEST_QUEUE])
        UploadNotifications(
            self,
            "Uploads",
            bucket_name=spec.buckets["data"].name,
            queue=self.ingest.queue,
            prefix=spec.upload_prefix,
        )
        self.functions = self.build_functions(
            shared,
            lambda f: {
                "source": event_source(f.trigger, queues={INGEST_QUEUE: self.ingest.queue}),
                "send_to": self._queues_for(f),
            },
        )
        CfnOutput(self, "IngestQueueUrl", value=self.ingest.queue.queue_url)
        CfnOutput(self, "IngestDlqUrl", value=self.ingest.dlq.queue_url)

    def _queues_for(self, f: FunctionSpec) -> dict[str, sqs.IQueue]:
        """The queues ``f`` sends to (spec ``sends_to``); this stack owns only the ingest queue."""
        unknown = {ref.queue for ref in f.sends_to.values()} - {INGEST_QUEUE}
        if unknown:
            raise ValueError(f"{f.id} sends to queues the Ingest stack does not own: {sorted(unknown)}")
        return {
            variable: self.ingest.dlq if ref.dead_letter else self.ingest.queue
            for variable, ref in f.sends_to.items()
        }

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        """The queue S3 upload notifications go to."""
        return (INGEST_QUEUE,)

    @staticmethod
    def placed_functions(spec: ServalSpec) -> list[FunctionSpec]:
        """The functions this stack owns: those consuming the ingest queue."""
        return [
            f
            for f in spec.functions.values()
            if isinstance(f.trigger, SqsTrigger) and f.trigger.queue == INGEST_QUEUE
        ]
