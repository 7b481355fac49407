"""Every spec queue has its DLQ in the stack that owns it; every queue consumer reads it with the spec's batching."""

from __future__ import annotations

import pytest
from cfn_helpers import queues, resources, spec_functions

from infra.spec import SqsTrigger

ENVS = ("dev", "prod")


def _owner(synth, env, queue_id):
    (concern,) = [
        c for c, stack in synth.envs[env].stacks.items() if queue_id in stack.owned_queues(stack.spec)
    ]
    return concern


@pytest.mark.parametrize("env", ENVS)
def test_every_queue_redrives_to_its_encrypted_dlq_after_the_configured_receives(synth, env):
    spec = synth.envs[env].spec
    for queue_id, queue_spec in spec.queues.items():
        # Given a spec queue, read from the stack that owns it
        found = queues(synth.raw(env, _owner(synth, env, queue_id)))
        dlq_id, dlq = found[queue_spec.dlq_name]
        _, queue = found[queue_spec.name]
        # Then it redrives to its DLQ, with the spec's visibility timeout and retention, both SSE-encrypted
        assert queue["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": queue_spec.max_receive_count,
        }, queue_id
        assert queue["VisibilityTimeout"] == queue_spec.visibility_timeout_s
        assert queue["MessageRetentionPeriod"] == dlq["MessageRetentionPeriod"] == queue_spec.retention_s
        assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True


def test_every_queue_consumer_reads_its_queue_in_spec_batches_with_partial_failures(synth):
    spec = synth.envs["dev"].spec
    consumers = {f.id: f.trigger for f in spec.functions.values() if isinstance(f.trigger, SqsTrigger)}
    assert {"ingest", "jobs"} <= set(consumers)
    for function_id, trigger in consumers.items():
        # Given a function triggered by a queue, and its event source mapping
        template, function_logical_id, _ = spec_functions(synth)[function_id]
        queue_id, _ = queues(template)[spec.queues[trigger.queue].name]
        (props,) = [
            m["Properties"]
            for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": function_logical_id}
        ]
        # Then it reads its queue with the spec's batching and concurrency and reports per-item failures
        assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        assert props["BatchSize"] == trigger.batch_size
        assert props["MaximumBatchingWindowInSeconds"] == trigger.max_batching_window_s
        assert props["ScalingConfig"] == {"MaximumConcurrency": trigger.max_concurrency}
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # And a message stays hidden for longer than one invocation may run
        assert spec.queues[trigger.queue].visibility_timeout_s >= spec.functions[function_id].timeout_s
