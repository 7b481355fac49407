"""Every resource of the spec, created with boto3 on the local moto server.

Two steps, so saved state can be restored in between without side effects:

1. :func:`provision` creates tables (streams still off), buckets, queues with their
   DLQs, the event bus and its rules, the Cognito user pool, the functions, and the
   state machines (from the spec's ASL files, with the functions' ARNs substituted).
2. :func:`connect_event_sources` then turns the table streams on and sends the
   data bucket's uploads to the ingest queue: restored items and objects are
   already there, so they produce no stream records and no ingest events.

Event-source mappings are not created in moto: :mod:`infra.local.pollers` plays
the Lambda poller service instead (see docs/decisions.md).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import boto3

from infra.local.moto_server import ACCOUNT_ID, REGION
from infra.spec import (
    ARCHITECTURE,
    PYTHON_RUNTIME,
    FunctionSpec,
    ServalSpec,
    StateMachineSpec,
    TableSpec,
    runtime_environment,
)

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

LAMBDA_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
STATES_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@dataclass(frozen=True)
class LocalResources:
    """The identifiers the runtime needs, as created on moto."""

    endpoint_url: str
    user_pool_id: str
    user_pool_client_id: str
    queue_urls: dict[str, str]  # by QueueSpec.id
    dlq_urls: dict[str, str]  # by QueueSpec.id
    queue_arns: dict[str, str]  # by QueueSpec.id
    bucket_names: dict[str, str]  # by BucketSpec.id
    table_names: dict[str, str]  # by TableSpec.id
    function_names: dict[str, str]  # by FunctionSpec.id
    event_bus_arn: str
    state_machine_arns: dict[str, str] = field(default_factory=dict)  # by StateMachineSpec.id
    stream_arns: dict[str, str] = field(default_factory=dict)  # by TableSpec.id, once connected
    region: str = REGION
    account_id: str = ACCOUNT_ID

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint_url}/{self.user_pool_id}/.well-known/jwks.json"

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"


def function_environment(
    fn: FunctionSpec,
    *,
    user_pool_id: str,
    queue_urls: dict[str, str],
    dlq_urls: dict[str, str],
    state_machine_arns: dict[str, str] | None = None,
) -> dict[str, str]:
    """The function's environment on moto (:func:`infra.spec.runtime_environment`, as CDK builds it)."""
    return runtime_environment(
        fn,
        user_pool_id=user_pool_id,
        queue_url=lambda _, ref: (dlq_urls if ref.dead_letter else queue_urls)[ref.queue],
        state_machine_arn=lambda machine_id: (state_machine_arns or {})[machine_id],
    )


def state_machine_arn(machine: StateMachineSpec, *, region: str, account_id: str) -> str:
    """The ARN Step Functions gives a state machine: known before it exists, from its spec name."""
    return f"arn:aws:states:{region}:{account_id}:stateMachine:{machine.name}"


def definition(machine: StateMachineSpec, function_arns: dict[str, str]) -> str:
    """The ASL file with each ``${Placeholder}`` replaced, as CloudFormation's DefinitionSubstitutions do."""
    text = machine.definition_file.read_text()
    for placeholder, function_id in machine.substitutions.items():
        text = text.replace(f"${{{placeholder}}}", function_arns[function_id])
    return text


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README.txt",
            "The local stack runs this function's handler from functions/ in the launcher process.\n",
        )
    return buffer.getvalue()


def create_table(client: Any, table: TableSpec, *, stream: bool = False) -> None:
    """A spec table: string keys, ALL-projected GSIs, TTL; its stream only when ``stream``."""

    def key_schema(pk: str, sk: str) -> list[dict[str, str]]:
        return [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]

    params: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": key_schema(table.pk, table.sk),
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in table.key_attributes],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream and table.stream:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream}
    if table.indexes:
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": key_schema(i.pk, i.sk),
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in table.indexes
        ]
    client.create_table(**params)
    if table.ttl_attribute:
        client.update_time_to_live(
            TableName=table.name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def _create_buckets(s3: Any, spec: ServalSpec) -> None:
    for bucket in spec.buckets.values():
        s3.create_bucket(Bucket=bucket.name)
        if bucket.versioned:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
        cors = spec.bucket_cors(bucket)
        if cors is not None:
            rule = {
                "AllowedMethods": list(cors.methods),
                "AllowedOrigins": list(cors.origins),
                "AllowedHeaders": list(cors.allowed_headers),
                "ExposeHeaders": list(cors.exposed_headers),
                "MaxAgeSeconds": cors.max_age_s,
            }
            s3.put_bucket_cors(Bucket=bucket.name, CORSConfiguration={"CORSRules": [rule]})


def _create_queues(sqs: Any, spec: ServalSpec) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    urls: dict[str, str] = {}
    dlq_urls: dict[str, str] = {}
    arns: dict[str, str] = {}

    def arn_of(url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    # a queue that is another's dead-letter queue first (its own DLQ is created with it)
    ordered = sorted(spec.queues.values(), key=lambda q: q.dead_letter_queue is not None)
    for queue in ordered:
        retention = str(queue.retention_s)
        if queue.dead_letter_queue:
            dlq_url = urls[queue.dead_letter_queue]
        else:
            dlq_url = sqs.create_queue(
                QueueName=queue.dlq_name, Attributes={"MessageRetentionPeriod": retention}
            )["QueueUrl"]
        redrive = {"deadLetterTargetArn": arn_of(dlq_url), "maxReceiveCount": str(queue.max_receive_count)}
        url = sqs.create_queue(
            QueueName=queue.name,
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout_s),
                "MessageRetentionPeriod": retention,
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        urls[queue.id], dlq_urls[queue.id], arns[queue.id] = url, dlq_url, arn_of(url)
    return urls, dlq_urls, arns


def _create_event_bus(events: Any, spec: ServalSpec, queue_arns: dict[str, str]) -> str:
    bus_arn = str(events.create_event_bus(Name=spec.event_bus_name)["EventBusArn"])
    for rule in spec.event_rules:
        events.put_rule(Name=rule.name, EventBusName=spec.event_bus_name, EventPattern=rule.pattern)
        events.put_targets(
            Rule=rule.name,
            EventBusName=spec.event_bus_name,
            Targets=[{"Id": rule.queue, "Arn": queue_arns[rule.queue]}],
        )
    return bus_arn


def _create_user_pool(cognito: CognitoIdentityProviderClient, spec: ServalSpec) -> tuple[str, str]:
    auth = spec.auth
    pool_id = cognito.create_user_pool(
        PoolName=auth.user_pool_name,
        UsernameAttributes=list(auth.username_attributes),  # type: ignore[arg-type]
        AutoVerifiedAttributes=["email"],
        Policies={
            "PasswordPolicy": {
                "MinimumLength": auth.password_min_length,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
                "TemporaryPasswordValidityDays": 3,
            }
        },
    )["UserPool"]["Id"]
    for precedence, group in enumerate(auth.groups):
        cognito.create_group(
            UserPoolId=pool_id,
            GroupName=group,
            Precedence=precedence,
            Description=f"Serval global role: {group}",
        )
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=auth.client_name,
        GenerateSecret=False,
        ExplicitAuthFlows=list(auth.client_auth_flows),  # type: ignore[arg-type]
        PreventUserExistenceErrors="ENABLED",
        EnableTokenRevocation=True,
        # the web app's code + PKCE login, as the CDK client has it (infra/local/oidc.py reads these)
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=list(auth.oauth_scopes),
        CallbackURLs=list(auth.callback_urls),
        LogoutURLs=list(auth.logout_urls),
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


def _create_secrets(secretsmanager: Any, spec: ServalSpec) -> None:
    """Each secret with a random value, as CDK's generated secrets have (state restore replaces it)."""
    for secret in spec.secrets.values():
        secretsmanager.create_secret(
            Name=secret.name,
            Description=secret.description,
            SecretString=secrets.token_hex(32),
        )


def _create_functions(
    spec: ServalSpec,
    *,
    user_pool_id: str,
    queue_urls: dict[str, str],
    dlq_urls: dict[str, str],
    state_machine_arns: dict[str, str],
) -> dict[str, str]:
    """Every spec function; returns their ARNs by spec id."""
    iam, lambda_ = boto3.client("iam"), boto3.client("lambda")
    code = _code_zip()
    arns = {}
    for fn in spec.functions.values():
        role = iam.create_role(RoleName=f"{fn.name}-role", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)
        environment = function_environment(
            fn,
            user_pool_id=user_pool_id,
            queue_urls=queue_urls,
            dlq_urls=dlq_urls,
            state_machine_arns=state_machine_arns,
        )
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Runtime": PYTHON_RUNTIME,
            "Architectures": [ARCHITECTURE],
            "Role": role["Role"]["Arn"],
            "Handler": fn.handler,
            "Description": fn.description,
            "Timeout": fn.timeout_s,
            "MemorySize": fn.memory_mb,
            "Code": {"ZipFile": code},
            "Environment": {"Variables": environment},
        }
        arns[fn.id] = str(lambda_.create_function(**params)["FunctionArn"])
    return arns


def _create_state_machines(spec: ServalSpec, function_arns: dict[str, str], expected: dict[str, str]) -> None:
    """Each spec state machine from its ASL file with the spec's substitutions (the functions' ARNs).

    ``expected`` holds the ARNs the starters were given (:func:`state_machine_arn`); a machine
    created under another ARN fails here, not at its first StartExecution.
    """
    iam, stepfunctions = boto3.client("iam"), boto3.client("stepfunctions")
    for machine in spec.state_machines.values():
        role = iam.create_role(RoleName=f"{machine.name}-role", AssumeRolePolicyDocument=STATES_TRUST_POLICY)
        arn = stepfunctions.create_state_machine(
            name=machine.name,
            definition=definition(machine, function_arns),
            roleArn=role["Role"]["Arn"],
            type=machine.type,
            tracingConfiguration={"enabled": True},
        )["stateMachineArn"]
        if arn != expected[machine.id]:
            raise RuntimeError(
                f"state machine {machine.id!r} was created as {arn}, not {expected[machine.id]}"
            )


def provision(spec: ServalSpec, endpoint_url: str) -> LocalResources:
    """Create every resource except the event sources (see :func:`connect_event_sources`)."""
    dynamodb = boto3.client("dynamodb")
    for table in spec.tables.values():
        create_table(dynamodb, table)
    _create_buckets(boto3.client("s3"), spec)
    urls, dlq_urls, arns = _create_queues(boto3.client("sqs"), spec)
    bus_arn = _create_event_bus(boto3.client("events"), spec, arns)
    pool_id, client_id = _create_user_pool(boto3.client("cognito-idp"), spec)
    _create_secrets(boto3.client("secretsmanager"), spec)
    # Functions and state machines refer to each other: the starters get the machines' ARNs, known
    # from their names, before the machines are created from the functions' ARNs.
    region, account_id = _region_and_account()
    machine_arns = {
        m.id: state_machine_arn(m, region=region, account_id=account_id) for m in spec.state_machines.values()
    }
    function_arns = _create_functions(
        spec, user_pool_id=pool_id, queue_urls=urls, dlq_urls=dlq_urls, state_machine_arns=machine_arns
    )
    _create_state_machines(spec, function_arns, machine_arns)
    return LocalResources(
        endpoint_url=endpoint_url,
        user_pool_id=pool_id,
        user_pool_client_id=client_id,
        queue_urls=urls,
        dlq_urls=dlq_urls,
        queue_arns=arns,
        bucket_names={b.id: b.name for b in spec.buckets.values()},
        table_names={t.id: t.name for t in spec.tables.values()},
        function_names={fn.id: fn.name for fn in spec.functions.values()},
        event_bus_arn=bus_arn,
        state_machine_arns=machine_arns,
    )


def _region_and_account() -> tuple[str, str]:
    sts = boto3.client("sts")
    return str(sts.meta.region_name), str(sts.get_caller_identity()["Account"])


def connect_event_sources(spec: ServalSpec, resources: LocalResources) -> LocalResources:
    """Turn on the table streams and the upload notifications: writes from now on are events."""
    dynamodb = boto3.client("dynamodb")
    stream_arns = {}
    for table in spec.tables.values():
        if table.stream:
            dynamodb.update_table(
                TableName=table.name,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": table.stream},
            )
            stream_arns[table.id] = dynamodb.describe_table(TableName=table.name)["Table"]["LatestStreamArn"]
    uploads = spec.uploads
    notification: dict[str, Any] = {
        "Id": uploads.id,
        "QueueArn": resources.queue_arns[uploads.queue],
        "Events": [uploads.event],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": uploads.prefix}]}},
    }
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=resources.bucket_names[uploads.bucket],
        NotificationConfiguration=cast(Any, {"QueueConfigurations": [notification]}),
    )
    return replace(resources, stream_arns=stream_arns)
