"""S3 ``ObjectCreated`` under the upload prefix -> the ingest queue."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.nag import acknowledge

BASIC_EXECUTION_POLICY = "service-role/AWSLambdaBasicExecutionRole"


# The spec's S3 event names (UploadNotificationSpec.event) as CDK names them.
S3_EVENT_TYPES = {"s3:ObjectCreated:*": s3.EventType.OBJECT_CREATED}


class UploadNotifications(Construct):
    """Sends every object created under ``prefix`` in the bucket named ``bucket_name`` to ``queue``.

    The bucket is imported by name, so CDK's ``Custom::S3BucketNotifications``
    resource and the queue policy both live in this (the queue's) stack and no
    reference cycle forms with the storage stack. The custom resource's handler
    runs with :attr:`handler_role`, which CDK scopes to
    ``s3:PutBucketNotification``/``s3:GetBucketNotification`` on this bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        bucket_name: str,
        queue: sqs.IQueue,
        prefix: str,
        event: str,
    ) -> None:
        super().__init__(scope, construct_id_)
        self.handler_role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="CDK's S3 bucket-notifications custom resource handler",
        )
        self.bucket = s3.Bucket.from_bucket_attributes(
            self, "Bucket", bucket_name=bucket_name, notifications_handler_role=self.handler_role
        )
        self.bucket.add_event_notification(
            S3_EVENT_TYPES[event],
            s3n.SqsDestination(queue),
            s3.NotificationKeyFilter(prefix=prefix),
        )
        acknowledge(
            self.handler_role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{BASIC_EXECUTION_POLICY}]",
            "CDK's bucket-notifications handler always attaches AWSLambdaBasicExecutionRole "
            "(its own log writes); its S3 permissions are scoped to this bucket by CDK.",
        )
