"""Async jobs: the API enqueues on the jobs queue, which another stack owns, by its name."""

from __future__ import annotations

from cfn_helpers import flat, spec_functions


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
