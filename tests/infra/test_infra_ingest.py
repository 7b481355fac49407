"""S3 uploads reach the ingest function through SQS, with a DLQ and partial-batch failures."""

from __future__ import annotations

from cfn_helpers import flat, only, resources


def _queues(template):
    """Queue name -> (logical id, properties)."""
    return {
        q["Properties"]["QueueName"]: (logical_id, q["Properties"])
        for logical_id, q in resources(template, "AWS::SQS::Queue").items()
    }


def test_uploads_under_the_prefix_notify_the_ingest_queue(synth):
    # Given the dev spec and the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    queue_id, _ = _queues(template)[spec.queues["ingest"].name]
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
    queue_id, _ = _queues(template)[spec.queues["ingest"].name]
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


def test_ingest_queue_redrives_to_its_dlq_after_the_configured_receives(synth):
    # Given the dev spec's ingest queue
    queue_spec = synth.envs["dev"].spec.queues["ingest"]
    queues = _queues(synth.raw("dev", "Ingest"))
    dlq_id, dlq = queues[queue_spec.dlq_name]
    _, queue = queues[queue_spec.name]
    # Then the queue redrives to the DLQ, with the spec's visibility timeout, both SSE-encrypted
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": queue_spec.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == queue_spec.visibility_timeout_s
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == queue_spec.retention_s


def test_ingest_function_consumes_the_queue_in_batches_with_partial_failures(synth):
    # Given the dev spec's ingest trigger
    spec = synth.envs["dev"].spec
    trigger = spec.functions["ingest"].trigger
    template = synth.raw("dev", "Ingest")
    queue_id, _ = _queues(template)[spec.queues["ingest"].name]
    # When the event source mapping is read
    _, mapping = only(template, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    # Then it reads the ingest queue with the spec's batching and reports per-item failures
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert props["BatchSize"] == trigger.batch_size
    assert props["MaximumBatchingWindowInSeconds"] == trigger.max_batching_window_s
    assert props["ScalingConfig"] == {"MaximumConcurrency": trigger.max_concurrency}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_ingest_function_knows_its_dlq_and_its_own_queue(synth):
    # Given the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    dlq_id, _ = _queues(template)[spec.queues["ingest"].dlq_name]
    queue_id, _ = _queues(template)[spec.queues["ingest"].name]
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
