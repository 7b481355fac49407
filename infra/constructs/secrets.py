"""Generated secrets (Secrets Manager), one per ``spec.secrets`` entry.

Functions never receive a secret's value through their environment: they get the
secret's name (``FunctionSpec.environment``) and ``secretsmanager:GetSecretValue``
on that one secret (``FunctionSpec.secrets``, see :mod:`infra.constructs.function`).
"""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.naming import construct_id, removal_policy
from infra.spec import SecretSpec, ServalSpec

# 64 lowercase hex digits (256 bits), the format the local stack generates (``secrets.token_hex(32)``),
# so both runtimes hand the functions the same kind of key.
SECRET_LENGTH = 64
NOT_HEX = "ghijklmnopqrstuvwxyz"


class ServalSecrets(Construct):
    def __init__(self, scope: Construct, construct_id_: str, *, spec: ServalSpec) -> None:
        super().__init__(scope, construct_id_)
        self._spec = spec
        self.secrets: dict[str, secretsmanager.Secret] = {
            s.id: self._secret(s) for s in spec.secrets.values()
        }

    def _secret(self, secret_spec: SecretSpec) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id(secret_spec.id, "Secret"),
            secret_name=secret_spec.name,
            description=secret_spec.description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=SECRET_LENGTH,
                exclude_uppercase=True,
                exclude_punctuation=True,
                include_space=False,
                exclude_characters=NOT_HEX,
            ),
            removal_policy=removal_policy(self._spec.config),
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            f"{secret_spec.name} is an HMAC key that seals records which stay verifiable for their whole "
            "retention; rotating it would break verification of every seal made with the old value, so "
            "it has no rotation schedule (a deliberate re-key is a migration, not a rotation).",
        )
        return secret
