"""Async jobs: the API enqueues on the jobs queue, which another stack owns, by its name."""

from __future__ import annotations

from cfn_helpers import flat, queues, resources, spec_functions


def test_api_enqueues_on_the_jobs_queue_by_name_and_deploys_after_it(synth):
    # Given the api function (its spec sends to the jobs queue, which the Jobs stack owns)
    spec = synth.envs["dev"].spec
    _, _, props = spec_functions(synth)["api"]
    # Then its JOBS_QUEUE_URL is the jobs queue's URL, built from the queue's spec name
    url = flat(props["Environment"]["Variables"]["JOBS_QUEUE_URL"])
    assert url.startswith("https://sqs.us-east-1.") and url.endswith(f"/{spec.queues['jobs'].name}")
    # And the Api stack deploys after the Jobs stack, which exports nothing for it
    stacks = synth.envs["dev"].stacks
    assert stacks["Jobs"] in stacks["Api"].dependencies
    assert not [o for o in synth.raw("dev", "Jobs").get("Outputs", {}).values() if "Export" in o]


def test_jobs_function_fans_large_exports_out_on_its_own_queue(synth):
    # Given the jobs function of each environment
    for env in synth.envs:
        spec = synth.envs[env].spec
        template, _, props = spec_functions(synth, env)["jobs"]
        variables = props["Environment"]["Variables"]
        # Then it knows the shard size of its environment's config
        assert variables["EXPORT_SHARD_TASKS"] == str(spec.config.export_shard_tasks)
        # And it sends shard and assemble messages to the jobs queue (the one it consumes, same stack)
        jobs_queue, _ = queues(template)[spec.queues["jobs"].name]
        assert variables["JOBS_QUEUE_URL"] == {"Ref": jobs_queue}


def test_the_jobs_dlq_is_consumed_by_the_jobs_dlq_function_which_keeps_messages_in_jobs_dead(synth):
    for env in synth.envs:
        # Given the jobs stack of each environment
        spec = synth.envs[env].spec
        template, function_id, props = spec_functions(synth, env)["jobs-dlq"]
        found = queues(template)
        jobs_dlq, dlq = found[spec.queues["jobs-dlq"].name]
        dead, _ = found[spec.queues["jobs-dlq"].dlq_name]
        # Then the jobs queue's dead letters go to the jobs-dlq queue, which redrives to jobs-dead
        _, jobs_queue = found[spec.queues["jobs"].name]
        assert jobs_queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [jobs_dlq, "Arn"]}
        assert dlq["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dead, "Arn"]}
        # And the jobs-dlq function reads that queue and keeps what it handled in jobs-dead
        (mapping,) = [
            m["Properties"]
            for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [jobs_dlq, "Arn"]}
        assert props["Environment"]["Variables"]["JOBS_DEAD_URL"] == {"Ref": dead}
