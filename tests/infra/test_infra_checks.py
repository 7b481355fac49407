"""cdk-nag, cfn-lint, acknowledgement hygiene, stack placement and local bundling."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from infra import bundling
from infra.app import add_checks, check_placement
from infra.constructs.nag import acknowledge_grant_wildcards, acknowledgements
from infra.spec import FunctionSpec, SqsTrigger


def test_cdk_nag_leaves_no_unacknowledged_finding(synth):
    # Given the session's app (its synthesis ran cdk-nag as a validation plugin and would have raised)
    # When the AWS Solutions pack checks the whole construct tree again
    report = AwsSolutionsChecks().validate_scope(synth.app)
    # Then it passes with no violation, and the synthesis left no failing plugin report either
    assert report.success is True
    assert report.violations == []
    assert [r for r in synth.validation_report()["pluginReports"] if r["conclusion"] != "success"] == []


def test_cdk_nag_fails_the_synth_on_an_unacknowledged_finding(tmp_path):
    # Given an app with the same checks and a queue that breaks AWS Solutions rules
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    sqs.Queue(stack, "Queue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    add_checks(app)
    # When it is synthesized
    # Then the synthesis fails and names the rule to fix or acknowledge
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS"):
        app.synth()


def test_every_acknowledgement_is_on_a_resource_construct_and_has_a_reason(synth):
    # Given every acknowledgement in the app
    found = acknowledgements(synth.app)
    stacks = {s.node.path for built in synth.envs.values() for s in built.stacks.values()}
    # Then none is stack-wide (or app-wide) and each gives a reason
    assert found
    for path, rules in found.items():
        assert path not in stacks and path != "", path
        for rule_id, reason in rules.items():
            assert len(reason) > 20, (path, rule_id)


def test_iam_wildcards_are_acknowledged_only_when_grants_produced_them():
    # Given a role granted on one table, plus a hand-written wildcard statement
    stack = Stack(App(), "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/probe"
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:Query"], resources=[table_arn, f"{table_arn}/index/*"])
    )
    role.add_to_policy(iam.PolicyStatement(actions=["xray:PutTraceSegments"], resources=["*"]))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    # When grant wildcards are acknowledged for that table
    acknowledged = acknowledge_grant_wildcards(role, table_arns=[table_arn])
    # Then the GSI wildcard is acknowledged, but not the hand-written s3:* nor its Resource "*"
    assert f"AwsSolutions-IAM5[Resource::{table_arn}/index/*]" in acknowledged
    assert "AwsSolutions-IAM5[Action::s3:*]" not in acknowledged
    assert "AwsSolutions-IAM5[Resource::*]" not in acknowledged


def test_cfn_lint_reports_no_errors_on_any_template(synth):
    # Given every synthesized template of both environments
    files = synth.template_files()
    assert len(files) == 2 * len(synth.envs["dev"].stacks)
    # When cfn-lint checks them
    errors = [
        f"{path.name}: {match}"
        for path in files
        for match in lint(path.read_text(), regions=["us-east-1"])
        if match.rule.id.startswith("E")
    ]
    # Then none has an error
    assert errors == []


def test_a_spec_function_without_a_stack_fails_the_build(synth):
    # Given a spec with a function consuming a queue no stack owns
    built = synth.envs["dev"]
    extra = FunctionSpec(
        id="exporter",
        name="serval-dev-exporter",
        handler="exporter.handler.handler",
        description="not wired",
        memory_mb=128,
        timeout_s=10,
        trigger=SqsTrigger(queue="exports", batch_size=1, max_concurrency=2),
    )
    spec = dataclasses.replace(built.spec, functions={**built.spec.functions, "exporter": extra})
    # When placement is checked
    # Then the build names the unwired function instead of silently dropping it
    with pytest.raises(ValueError, match="exporter"):
        check_placement(spec, built.stacks)


def test_layer_bundle_holds_the_package_and_dependencies(synth, tmp_path, monkeypatch):
    # Given the pip cache the session's synthesis filled
    cached = bundling.CACHE_ROOT / bundling.requirements_key()
    assert (cached / "pydantic_core").is_dir()

    # When the layer is bundled again with pip unavailable
    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the cache is warm")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert bundling.LayerBundler().try_bundle(str(tmp_path)) is True
    # Then the layer has the serval package and the pinned deps under python/, without bytecode
    python = tmp_path / "python"
    assert (python / "serval" / "keys.py").is_file()
    assert (python / "aws_lambda_powertools").is_dir()
    assert not list(python.joinpath("serval").rglob("__pycache__"))
    assert list(python.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"))


def test_pip_cache_key_follows_the_requirements_content(tmp_path):
    # Given two requirement files that differ by one pin
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("pydantic==2.13.4\n")
    b.write_text("pydantic==2.13.3\n")
    # Then they are cached under different keys, and the same content under the same key
    assert bundling.requirements_key(a) != bundling.requirements_key(b)
    assert bundling.requirements_key(a) == bundling.requirements_key(Path(a))


def test_function_asset_excludes_tests_and_bytecode():
    # Given the exclude patterns of the function and layer assets
    # Then caches and tests never ship
    assert {"**/__pycache__", "**/tests"} <= set(bundling.ASSET_EXCLUDES)
