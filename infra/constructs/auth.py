"""Cognito user pool, the global role groups, the web/SDK app client and its managed-login domain."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.naming import construct_id, removal_policy
from infra.spec import ServalSpec

# AuthSpec.client_auth_flows -> CDK AuthFlow fields. CDK always adds ALLOW_REFRESH_TOKEN_AUTH.
_AUTH_FLOWS = {
    "ALLOW_USER_PASSWORD_AUTH": "user_password",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH": "admin_user_password",
    "ALLOW_USER_SRP_AUTH": "user_srp",
    "ALLOW_CUSTOM_AUTH": "custom",
    "ALLOW_REFRESH_TOKEN_AUTH": None,
}
_SIGN_IN_ALIASES = {"email": "email", "phone_number": "phone", "preferred_username": "preferred_username"}


def auth_flows(flows: tuple[str, ...]) -> cognito.AuthFlow:
    unknown = sorted(set(flows) - set(_AUTH_FLOWS))
    if unknown:
        raise ValueError(f"unsupported client auth flows {unknown}")
    return cognito.AuthFlow(**{_AUTH_FLOWS[f]: True for f in flows if _AUTH_FLOWS[f]})  # type: ignore[arg-type]


_OAUTH_SCOPES = {
    "openid": cognito.OAuthScope.OPENID,
    "email": cognito.OAuthScope.EMAIL,
    "profile": cognito.OAuthScope.PROFILE,
    "phone": cognito.OAuthScope.PHONE,
}


def oauth_scopes(scopes: tuple[str, ...]) -> list[cognito.OAuthScope]:
    unknown = sorted(set(scopes) - set(_OAUTH_SCOPES))
    if unknown:
        raise ValueError(f"unsupported OAuth scopes {unknown}")
    return [_OAUTH_SCOPES[s] for s in scopes]


def sign_in_aliases(attributes: tuple[str, ...]) -> cognito.SignInAliases:
    unknown = sorted(set(attributes) - set(_SIGN_IN_ALIASES))
    if unknown:
        raise ValueError(f"unsupported username attributes {unknown}")
    return cognito.SignInAliases(**{_SIGN_IN_ALIASES[a]: True for a in attributes})


class ServalUserPool(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        config = spec.config
        threat_protection = config.cognito_advanced_security
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=spec.auth.user_pool_name,
            self_sign_up_enabled=config.cognito_self_sign_up,
            sign_in_aliases=sign_in_aliases(spec.auth.username_attributes),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=spec.auth.password_min_length,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Threat protection (formerly "advanced security mode ENFORCED") needs the Plus plan.
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if threat_protection else None
            ),
            deletion_protection=config.deletion_protection,
            removal_policy=removal_policy(config),
        )
        self.groups = {
            name: cognito.UserPoolGroup(
                self,
                construct_id(name, "Group"),
                user_pool=self.user_pool,
                group_name=name,
                description=f"Serval global role: {name}",
                precedence=rank,  # admin wins when a user is in several groups
            )
            for rank, name in enumerate(spec.auth.groups)
        }
        self.client = self.user_pool.add_client(
            "WebClient",
            user_pool_client_name=spec.auth.client_name,
            generate_secret=False,  # a browser SPA and CLI cannot keep a secret
            auth_flows=auth_flows(spec.auth.client_auth_flows),
            # the web app's login: authorization code (PKCE: a public client) through managed login
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=oauth_scopes(spec.auth.oauth_scopes),
                callback_urls=list(spec.auth.callback_urls),
                logout_urls=list(spec.auth.logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        # Managed login on a Cognito domain, with Cognito's own look for the web client.
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=spec.auth.domain_prefix),
            managed_login_version=cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
        )
        cognito.CfnManagedLoginBranding(
            self,
            "LoginBranding",
            user_pool_id=self.user_pool.user_pool_id,
            client_id=self.client.user_pool_client_id,
            use_cognito_provided_values=True,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is OPTIONAL with TOTP by design: admins provision annotator accounts and each "
            "organisation decides whether to require it; SMS MFA is deliberately off.",
        )
        if not threat_protection:
            acknowledge(
                self.user_pool,
                "AwsSolutions-COG8",
                f"Threat protection (Plus plan) is enabled per environment by cognito_advanced_security; "
                f"it is off in {config.name} to avoid the Plus plan's per-user cost (on in prod).",
            )
