"""A Step Functions state machine from one StateMachineSpec: the spec's ASL file, its substitutions.

The definition is the ASL file itself (``DefinitionBody.from_file``); each
``${Placeholder}`` is replaced by the ARN of the spec function the spec names, as
the local stack replaces it. The role may invoke exactly those functions (and
their versions and aliases, as ``Function.grant_invoke`` grants). Every event is
logged without execution data (payloads stay out of the logs), and X-Ray traces
every execution.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.nag import acknowledge_grant_wildcards
from infra.constructs.naming import log_retention, removal_policy
from infra.spec import ServalSpec, StateMachineSpec


def log_group_name(machine: StateMachineSpec) -> str:
    """Under ``/aws/vendedlogs/``, where CloudWatch Logs keeps its resource policy small."""
    return f"/aws/vendedlogs/states/{machine.name}"


class ServalStateMachine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        machine: StateMachineSpec,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        """``functions`` holds at least the spec functions ``machine.substitutions`` names, by spec id."""
        super().__init__(scope, construct_id_)
        missing = sorted({f for f in machine.substitutions.values() if f not in functions})
        if missing:
            raise ValueError(f"state machine {machine.id!r} needs function(s) {missing}")
        invoked = [functions[f] for f in dict.fromkeys(machine.substitutions.values())]
        self.spec = machine
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name(machine),
            retention=log_retention(spec.config),
            removal_policy=removal_policy(spec.config),
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=machine.name,
            state_machine_type=sfn.StateMachineType[machine.type],
            definition_body=sfn.DefinitionBody.from_file(str(machine.definition_file)),
            definition_substitutions={
                placeholder: functions[function_id].function_arn
                for placeholder, function_id in machine.substitutions.items()
            },
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        for function in invoked:
            function.grant_invoke(self.state_machine.role)
        role = self.state_machine.role
        if isinstance(role, iam.Role):
            acknowledge_grant_wildcards(role, function_arns=[function.function_arn for function in invoked])
