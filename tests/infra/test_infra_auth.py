"""Cognito: role groups, a public app client, a strong password policy, optional TOTP MFA."""

from __future__ import annotations

import pytest
from cfn_helpers import only, resources


def test_user_pool_has_the_spec_groups_in_precedence_order(synth):
    # Given the dev spec's auth section
    auth = synth.envs["dev"].spec.auth
    # When the groups are read
    groups = resources(synth.raw("dev", "Auth"), "AWS::Cognito::UserPoolGroup").values()
    # Then there is one group per global role, admin taking precedence
    assert sorted((g["Properties"]["Precedence"], g["Properties"]["GroupName"]) for g in groups) == list(
        enumerate(auth.groups)
    )


def test_app_client_is_public_and_allows_password_and_srp_auth(synth):
    # Given the dev spec
    auth = synth.envs["dev"].spec.auth
    # When the app client is read
    _, client = only(synth.raw("dev", "Auth"), "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    # Then it is the spec's client, without a secret, with USER_PASSWORD_AUTH and SRP
    assert props["ClientName"] == auth.client_name
    assert props["GenerateSecret"] is False
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"} <= set(props["ExplicitAuthFlows"])
    assert set(props["ExplicitAuthFlows"]) == set(auth.client_auth_flows)
    assert props["PreventUserExistenceErrors"] == "ENABLED"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_user_pool_enforces_strong_passwords_and_offers_totp(synth, env):
    # Given the environment's spec
    spec = synth.envs[env].spec
    # When the user pool is read
    _, pool = only(synth.raw(env, "Auth"), "AWS::Cognito::UserPool")
    props = pool["Properties"]
    # Then it is named by the spec, passwords are long and mixed, MFA is optional TOTP
    assert props["UserPoolName"] == spec.auth.user_pool_name
    assert props["UsernameAttributes"] == list(spec.auth.username_attributes)
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == spec.auth.password_min_length >= 12
    assert all(
        policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols")
    )
    assert props["MfaConfiguration"] == "OPTIONAL"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert props["AccountRecoverySetting"] == {
        "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
    }
    # And only admins create users: self sign-up is off unless the config enables it, and no env does
    assert spec.config.cognito_self_sign_up is False
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True


def test_auth_outputs_pool_and_client_ids(synth):
    # Given the Auth stack
    outputs = synth.raw("dev", "Auth")["Outputs"]
    # Then the ids the SPA and CLI need are outputs
    assert {"UserPoolId", "UserPoolClientId"} <= set(outputs)
