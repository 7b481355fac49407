from __future__ import annotations

from typing import Any

from infra.constructs.ingest import UploadNotifications
from infra.spec import ServalSpec
from infra.stacks.base import ServalStack

RANGES_QUEUE = "ingest-ranges"


class IngestStack(ServalStack):
    """S3 upload -> SQS (with DLQ) -> ingest function; a large manifest's byte ranges -> SQS
    (with DLQ) -> ingest-ranges function."""

    concern = "Ingest"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        uploads = self.spec.uploads
        self.ingest = self.queues[uploads.queue]
        UploadNotifications(
            self,
            "Uploads",
            bucket_name=self.spec.buckets[uploads.bucket].name,
            queue=self.ingest.queue,
            prefix=uploads.prefix,
            event=uploads.event,
        )
        self.functions = self.build_functions()

    @staticmethod
    def owned_queues(spec: ServalSpec) -> tuple[str, ...]:
        """The queue S3 upload notifications go to, and the byte ranges of large manifests."""
        return (spec.uploads.queue, RANGES_QUEUE)
