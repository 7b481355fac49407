from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput

from infra.constructs.storage import ServalBuckets
from infra.stacks.base import ServalStack


class StorageStack(ServalStack):
    """Buckets for uploads and exports, plus their access-log bucket."""

    concern = "Storage"

    def __init__(self, scope: Any, **kwargs: Any) -> None:
        super().__init__(scope, **kwargs)
        self.storage = ServalBuckets(self, "Buckets", spec=self.spec)
        for bucket_id, bucket in self.storage.buckets.items():
            CfnOutput(self, f"{bucket_id.capitalize()}BucketName", value=bucket.bucket_name)
