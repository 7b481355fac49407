"""S3 uploads reach the ingest function through SQS, with a DLQ and partial-batch failures; the
byte ranges of large manifests reach the ingest-ranges function through a queue of their own."""

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


def _function(template, name):
    return next(
        (function_id, f)
        for function_id, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("FunctionName") == name
    )


def _sends(template):
    return [
        resource
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in statement.get("Action", [])
        for resource in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
    ]


def test_ingest_function_knows_its_dlq_and_the_ranges_queue(synth):
    # Given the Ingest stack
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    dlq_id, _ = queues(template)[spec.queues["ingest"].dlq_name]
    ranges_id, _ = queues(template)[spec.queues["ingest-ranges"].name]
    # When the ingest function is read
    _, function = _function(template, spec.functions["ingest"].name)
    # Then its environment carries the DLQ's URL (poison records), the ranges queue's (a large
    # manifest's ranges, a one-range import's continuation) and the range size
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INGEST_DLQ_URL"] == {"Ref": dlq_id}
    assert variables["INGEST_RANGES_QUEUE_URL"] == {"Ref": ranges_id}
    assert variables["INGEST_RANGE_BYTES"] == str(spec.config.ingest_range_bytes)
    # And its role may send to both
    assert {"Fn::GetAtt": [dlq_id, "Arn"]} in _sends(template)
    assert {"Fn::GetAtt": [ranges_id, "Arn"]} in _sends(template)


def test_ranges_function_takes_one_range_per_invocation_with_a_dlq(synth):
    # Given the Ingest stack and the ranges queue's spec
    spec = synth.envs["dev"].spec
    template = synth.raw("dev", "Ingest")
    queue_id, queue = queues(template)[spec.queues["ingest-ranges"].name]
    dlq_id, _ = queues(template)[spec.queues["ingest-ranges"].dlq_name]
    # When the ranges function and its event source are read
    function_id, function = _function(template, spec.functions["ingest-ranges"].name)
    mapping = next(
        m
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function_id}
    )
    # Then each invocation takes one range message from the ranges queue, reports partial
    # failures, and at most ingest_range_concurrency run at once
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert props["BatchSize"] == 1
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": spec.config.ingest_range_concurrency}
    assert function["Properties"]["Handler"] == "ingest.handler.ranges"
    assert function["Properties"]["Timeout"] == 900
    # And the queue redrives to its DLQ and hides a message for longer than a range may run
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert redrive["maxReceiveCount"] == spec.config.ingest_max_receive_count
    assert queue["VisibilityTimeout"] >= 900
    # And continuations and poison ranges may be sent to the queue and to its DLQ
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["INGEST_RANGES_QUEUE_URL"] == {"Ref": queue_id}
    assert variables["INGEST_RANGES_DLQ_URL"] == {"Ref": dlq_id}
    assert {"Fn::GetAtt": [queue_id, "Arn"]} in _sends(template)
    assert {"Fn::GetAtt": [dlq_id, "Arn"]} in _sends(template)
