"""The CDK app: ``cdk synth -c env=dev|staging|prod`` (default dev).

Every resource comes from ``infra.spec.build(config, Aws.ACCOUNT_ID, Aws.REGION)``,
the same source of truth the local moto stack builds from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Aws, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import EnvConfig, load
from infra.spec import ROOT, ServalSpec, build
from infra.stacks import (
    ApiStack,
    AuthStack,
    DataStack,
    EventsStack,
    FrontendStack,
    IngestStack,
    JobsStack,
    ServalStack,
    StorageStack,
    WorkflowStack,
)

DEFAULT_ENV = "dev"
DEPLOYABLE = ("dev", "staging", "prod")


@dataclass(frozen=True)
class ServalApp:
    app: App
    spec: ServalSpec
    stacks: dict[
        str, ServalStack
    ]  # by concern: Storage, Data, Auth, Ingest, Events, Jobs, Workflow, Api, Frontend


def cdk_context() -> dict[str, Any]:
    """The feature flags and settings from cdk.json, for apps built outside the CLI (tests)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


def environment(config: EnvConfig) -> Environment:
    """The account from the config, else the CLI's default; the region from the config."""
    return Environment(
        account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=config.region or os.environ.get("CDK_DEFAULT_REGION"),
    )


def check_placement(spec: ServalSpec, stacks: dict[str, ServalStack]) -> None:
    """Every spec function, queue and state machine is created by exactly one stack: a new one must be wired."""
    functions = [f.id for s in stacks.values() for f in s.placed_functions(spec)]
    queues = [q for s in stacks.values() for q in s.owned_queues(spec)]
    machines = [m for s in stacks.values() for m in s.state_machines]
    problems = []
    for kind, placed, expected in (
        ("function", functions, spec.functions),
        ("queue", queues, spec.queues),
        ("state machine", machines, spec.state_machines),
    ):
        unplaced = sorted(set(expected) - set(placed))
        twice = sorted({x for x in placed if placed.count(x) > 1})
        if unplaced:
            problems.append(f"no stack creates {kind}(s) {unplaced}")
        if twice:
            problems.append(f"several stacks create {kind}(s) {twice}")
    if problems:
        raise ValueError("; ".join(problems))


def order_queue_senders(spec: ServalSpec, stacks: dict[str, ServalStack]) -> None:
    """A stack whose functions send to another stack's queue (imported by name) deploys after it."""
    owners = {queue_id: stack for stack in stacks.values() for queue_id in stack.owned_queues(spec)}
    for stack in stacks.values():
        for f in stack.placed_functions(spec):
            for ref in f.sends_to.values():
                owner = owners[ref.queue]
                if owner is not stack:
                    stack.add_stack_dependency(owner, f"{f.id} sends to queue {ref.queue!r} by name")


def order_execution_starters(spec: ServalSpec, stacks: dict[str, ServalStack]) -> None:
    """A stack whose functions start another stack's state machine (imported by name) deploys after it."""
    owners = {machine_id: stack for stack in stacks.values() for machine_id in stack.state_machines}
    for stack in stacks.values():
        for f in stack.placed_functions(spec):
            for machine_id in f.starts_executions:
                owner = owners[machine_id]
                if owner is not stack:
                    stack.add_stack_dependency(owner, f"{f.id} starts state machine {machine_id!r} by name")


def build_app(app: App, env_name: str) -> ServalApp:
    if env_name not in DEPLOYABLE:
        raise SystemExit(f"env={env_name!r} cannot be deployed; choose one of {', '.join(DEPLOYABLE)}")
    config = load(env_name)
    spec = build(config, Aws.ACCOUNT_ID, Aws.REGION)
    common: dict[str, Any] = {"spec": spec, "env": environment(config)}

    storage = StorageStack(app, **common)
    data = DataStack(app, **common)
    auth = AuthStack(app, **common)
    ingest = IngestStack(app, **common)
    events = EventsStack(app, streams=dict(data.data.tables), **common)
    jobs = JobsStack(app, **common)
    workflow = WorkflowStack(app, **common)
    api = ApiStack(app, user_pool=auth.auth.user_pool, **common)
    frontend = FrontendStack(
        app,
        user_pool=auth.auth.user_pool,
        client=auth.auth.client,
        domain=auth.auth.domain,
        api_url=api.rest_api.url,
        **common,
    )
    # Compute stacks address buckets, tables, the bus, the secrets and other stacks' queues by
    # their spec names, so their deployment order is stated here rather than implied by references.
    for consumer in (ingest, events, jobs, workflow, api):
        consumer.add_stack_dependency(storage, "uses the buckets by name")
        consumer.add_stack_dependency(data, "uses the tables, the bus and the secrets by name")

    stacks: dict[str, ServalStack] = {
        s.concern: s for s in (storage, data, auth, ingest, events, jobs, workflow, api, frontend)
    }
    check_placement(spec, stacks)
    order_queue_senders(spec, stacks)
    order_execution_starters(spec, stacks)
    return ServalApp(app=app, spec=spec, stacks=stacks)


def add_checks(app: App) -> None:
    """cdk-nag (AWS Solutions pack, v3 API): unacknowledged findings fail the synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def main() -> None:
    app = App()
    build_app(app, str(app.node.try_get_context("env") or DEFAULT_ENV))
    add_checks(app)
    app.synth()


if __name__ == "__main__":
    main()
