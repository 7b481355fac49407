"""A job whose worker crashes or times out on every delivery ends ``failed``, with its reason.

The spec's jobs and jobs-dlq functions run on the local stack's pollers against moto's
server, with the jobs queue's visibility timeout lowered to one second so that the three
deliveries happen within the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.local.pollers import SqsPoller, pollers_for
from infra.local.resources import LocalResources
from infra.spec import ServalSpec
from serval.adapters import clients, dynamo_models
from serval.adapters import jobs as job_store
from serval.domain.actor import Actor
from serval.domain.jobs import Job, JobKind, JobStatus
from serval.logic import jobs
from serval.settings import invocation_environment
from tests.integration.local.helpers import wait_until


class Crash(BaseException):
    """What a killed sandbox looks like from inside: nothing after it runs."""


@pytest.fixture
def env(resources: LocalResources, spec: ServalSpec) -> Iterator[dict[str, str]]:
    """The jobs function's environment, as the local stack configured it; fresh SDK clients."""
    clients.reset()
    dynamo_models.tasks_models.cache_clear()
    dynamo_models.audit_models.cache_clear()
    variables = boto3.client("lambda").get_function_configuration(FunctionName=spec.functions["jobs"].name)
    yield dict(variables["Environment"]["Variables"])
    clients.reset()


@pytest.fixture
def quick_redelivery(resources: LocalResources, spec: ServalSpec) -> Iterator[None]:
    sqs, url = boto3.client("sqs"), resources.queue_urls["jobs"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    yield
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": str(spec.queues["jobs"].visibility_timeout_s)}
    )


def _submit(env: dict[str, str]) -> Job:
    with invocation_environment(env):
        job = job_store.new("p-dead", JobKind.AUDIT_EXPORT, {"format": "jsonl"}, "u-admin")
        return jobs.submit(job, Actor.system("test"), "audit.export")


def _job(env: dict[str, str], job: Job) -> Job:
    with invocation_environment(env):
        return job_store.get(job.project_id, job.job_id, consistent=True)


@pytest.mark.usefixtures("quick_redelivery")
# a killed sandbox's Crash ends the moto server thread that ran the invocation, as the warning says
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("how", ["crash", "timeout"])
def test_a_job_whose_worker_dies_on_every_delivery_ends_failed_with_the_reason(
    resources: LocalResources,
    spec: ServalSpec,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    # Given a jobs worker that is killed on every delivery: at once, or by its timeout
    lambda_ = boto3.client("lambda")
    jobs_function = spec.functions["jobs"].name

    def dies(claim: Any, time_left: Any) -> Any:
        if how == "timeout":
            time.sleep(1.5)
        raise Crash

    monkeypatch.setattr(jobs, "runner_for", lambda kind: dies)
    if how == "timeout":
        lambda_.update_function_configuration(FunctionName=jobs_function, Timeout=1)
    job = _submit(env)
    # When the jobs and jobs-dlq functions consume their queues as the local stack does
    pollers: list[SqsPoller] = [
        p  # type: ignore[misc]
        for p in pollers_for(spec, resources, sqs={"wait_time_s": 1})
        if p.source.function_name in (jobs_function, spec.functions["jobs-dlq"].name)
    ]
    for poller in pollers:
        poller.start()
    try:
        wait_until(lambda: _job(env, job).status is JobStatus.FAILED, timeout_s=60)
    finally:
        for poller in pollers:
            poller.stop()
        lambda_.update_function_configuration(
            FunctionName=jobs_function, Timeout=spec.functions["jobs"].timeout_s
        )
    # Then the job failed with the reason, after its worker took it
    failed = _job(env, job)
    assert failed.error == (
        "the job did not finish in any of its 3 deliveries: the jobs worker crashed or timed out each time"
    )
    assert failed.attempts >= 1
    # And its message is kept in jobs-dead, with the outcome, where it can be redriven from
    sqs = boto3.client("sqs")
    dead_url = resources.dlq_urls["jobs-dlq"]
    (kept,) = sqs.receive_message(QueueUrl=dead_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)[
        "Messages"
    ]
    assert job.job_id in kept["Body"]
    assert kept["MessageAttributes"]["outcome"]["StringValue"] == "failed"
    assert kept["MessageAttributes"]["kind"]["StringValue"] == "audit_export"
    sqs.delete_message(QueueUrl=dead_url, ReceiptHandle=kept["ReceiptHandle"])
    attributes = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["RedrivePolicy", "QueueArn"])
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dead_url)["queueUrls"]
    assert sources == [resources.queue_urls["jobs-dlq"]]
    assert "RedrivePolicy" not in attributes["Attributes"]
