"""S3 uploads reach the ingest function through SQS, with a DLQ and partial-batch failures."""

from __future__ import annotations

from cfn_helpers import flat, only, queues, resources


def test_uploads_under_the_prefix_notify_the_ingest_queue(synth):
    # Given the dev spec and the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    queue_id, _ = queues(template)[spec.queues["ingest"].name]
    # When the S3 notification custom resource is read
    _, notification = only(template, "Custom::S3BucketNotifications")
    props = notification["Properties"]
    # Then ObjectCreated events under the upload prefix of the data bucket go to the ingest queue
    assert "serval-dev-data-" in flat(props["BucketName"])
    assert props["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": spec.upload_prefix}]}},
                "QueueArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            }
        ]
    }


def test_ingest_queue_accepts_messages_from_the_data_bucket_only(synth):
    # Given the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    queue_id, _ = queues(template)[spec.queues["ingest"].name]
    # When the ingest queue's policy is read
    policy = next(
        p
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": queue_id}]
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    s3_sends = [s for s in statements if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    # Then S3 may send only on behalf of the data bucket, and non-TLS access is denied
    assert len(s3_sends) == 1
    assert "sqs:SendMessage" in s3_sends[0]["Action"]
    assert "serval-dev-data-" in flat(s3_sends[0]["Condition"]["ArnLike"]["aws:SourceArn"])
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_ingest_function_knows_its_dlq_and_its_own_queue(synth):
    # Given the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    dlq_id, _ = queues(template)[spec.queues["ingest"].dlq_name]
    queue_id, _ = queues(template)[spec.queues["ingest"].name]
    # When the ingest function is read
    function = next(
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == spec.functions["ingest"].name
    )
    # Then its environment carries the DLQ's URL (poison records) and its queue's (continuations)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INGEST_DLQ_URL"] == {"Ref": dlq_id}
    assert variables["INGEST_QUEUE_URL"] == {"Ref": queue_id}
    # And its role may send to both
    policies = resources(template, "AWS::IAM::Policy").values()
    sends = [
        resource
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in statement.get("Action", [])
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
    ]
    assert {"Fn::GetAtt": [dlq_id, "Arn"]} in sends
    assert {"Fn::GetAtt": [queue_id, "Arn"]} in sends
