"""Environments differ only in config values: prod retains and protects data, dev does not."""

from __future__ import annotations

import pytest
from cfn_helpers import only, resources

from infra.app import DEPLOYABLE, build_app


def test_stacks_are_named_per_environment_and_concern(synth):
    for env, built in synth.envs.items():
        # Given an environment's stacks
        for concern, stack in built.stacks.items():
            # Then each stack is named by the spec and tagged with project and environment
            assert stack.stack_name == built.spec.stack_name(concern) == f"Serval-{env}-{concern}"
            assert stack.tags.tag_values() == {"project": "serval", "env": env}


@pytest.mark.parametrize(
    ("env", "policy", "protected"),
    [("dev", "Delete", False), ("prod", "Retain", True)],
)
def test_tables_are_retained_and_protected_in_prod_only(synth, env, policy, protected):
    # Given the environment's Data stack
    tables = resources(synth.raw(env, "Data"), "AWS::DynamoDB::Table").values()
    # Then deletion policy and deletion protection follow retain_data and deletion_protection
    assert tables
    for table in tables:
        assert table["DeletionPolicy"] == policy
        assert table["UpdateReplacePolicy"] == policy
        assert table["Properties"]["DeletionProtectionEnabled"] is protected


@pytest.mark.parametrize(("env", "policy"), [("dev", "Delete"), ("prod", "Retain")])
def test_buckets_and_user_pool_follow_retain_data(synth, env, policy):
    # Given the environment's Storage and Auth stacks
    buckets = resources(synth.raw(env, "Storage"), "AWS::S3::Bucket").values()
    _, pool = only(synth.raw(env, "Auth"), "AWS::Cognito::UserPool")
    # Then buckets and the user pool are deleted with the stack in dev and kept in prod
    assert buckets
    assert {b["DeletionPolicy"] for b in buckets} == {policy}
    assert pool["DeletionPolicy"] == policy


def test_dev_buckets_empty_themselves_on_destroy_and_prod_buckets_never_do(synth):
    # Given both environments' Storage stacks
    dev = resources(synth.raw("dev", "Storage"), "Custom::S3AutoDeleteObjects")
    prod = resources(synth.raw("prod", "Storage"), "Custom::S3AutoDeleteObjects")
    # Then dev cleans its buckets for `cdk destroy`, prod has no auto-delete at all
    assert len(dev) == len(synth.envs["dev"].spec.buckets) + 1  # plus the access-log bucket
    assert prod == {}


def test_threat_protection_is_enforced_in_prod_only(synth):
    # Given both user pools
    _, dev = only(synth.raw("dev", "Auth"), "AWS::Cognito::UserPool")
    _, prod = only(synth.raw("prod", "Auth"), "AWS::Cognito::UserPool")
    # Then prod is on the Plus plan with threat protection enforced; dev is on Essentials without it
    assert prod["Properties"]["UserPoolTier"] == "PLUS"
    assert prod["Properties"]["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert prod["Properties"]["DeletionProtection"] == "ACTIVE"
    assert dev["Properties"]["UserPoolTier"] == "ESSENTIALS"
    assert "UserPoolAddOns" not in dev["Properties"]


def test_the_local_environment_cannot_be_deployed():
    # Given the local (moto) environment name
    # When an app is built for it
    # Then the build refuses: local resources are built by infra/local, not CloudFormation
    assert "local" not in DEPLOYABLE
    with pytest.raises(SystemExit, match="cannot be deployed"):
        build_app(None, "local")  # type: ignore[arg-type]
