"""One Lambda function from one FunctionSpec, with its own least-privilege role.

The role starts empty (no AWS managed policies) and receives exactly what the
spec declares: grants on tables (GSIs included, at one of the :data:`TABLE_ACCESS`
levels) and buckets, PutEvents on the bus, the Cognito admin actions on the one
user pool, sqs:SendMessage on its ``sends_to`` queues, GetSecretValue on its
secrets, StartExecution on the state machines it starts (whose ARN it gets as
``STATE_MACHINE_ARN``), ListExecutions on those it manages and DescribeExecution and
StopExecution on their executions, the
task-token callbacks when it completes workflow steps, writes to its own log group, X-Ray
segments, and whatever its trigger needs (a schedule trigger gets its EventBridge rule).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Arn, ArnFormat, Duration, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.layer import LAMBDA_ARCHITECTURE, RUNTIME
from infra.constructs.nag import acknowledge, acknowledge_grant_wildcards
from infra.constructs.naming import log_retention, removal_policy
from infra.spec import (
    STATE_MACHINE_ARN_VARIABLE,
    ApiTrigger,
    FunctionSpec,
    ObjectAccess,
    ScheduleTrigger,
    ServalSpec,
    SqsTrigger,
    StateMachineTrigger,
    StreamTrigger,
    Trigger,
    runtime_environment,
)

# Deployed-only Powertools settings. Traces never capture payloads (STYLE.md).
POWERTOOLS_DEFAULTS: dict[str, str] = {
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    "POWERTOOLS_TRACER_CAPTURE_ERROR": "true",
}

# What a function with ``manages_users`` may do, on its user pool only: what the user-management
# API calls (invite, with AdminDeleteUser rolling back a half-finished invite; disable/enable with
# a global sign-out; role groups; listing).
USER_ADMIN_ACTIONS: tuple[str, ...] = (
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminDisableUser",
    "cognito-idp:AdminEnableUser",
    "cognito-idp:AdminUserGlobalSignOut",
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminRemoveUserFromGroup",
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:ListUsers",
)

# DynamoDB actions per ``FunctionSpec.table_access`` level, granted on the table and its GSIs.
# Named one by one rather than taken from Table.grant_read_data/grant_read_write_data, which add
# Scan (no request path scans, STYLE.md) and the stream actions (a stream consumer gets those, on
# the stream, from its event source). "append" and "update" allow neither DeleteItem nor
# BatchWriteItem (whose one IAM action covers deletes too): they are the levels of the append-only
# audit table, whose writers put records (conditionally, inside TransactWriteItems) and whose
# chainer only updates (sets a record's chain fields, upserts a chain head).
TABLE_READ_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",  # the condition checks of TransactWriteItems
    "dynamodb:DescribeTable",
)
TABLE_ACCESS: dict[str, tuple[str, ...]] = {
    "read": TABLE_READ_ACTIONS,
    "append": (*TABLE_READ_ACTIONS, "dynamodb:PutItem"),
    "update": (*TABLE_READ_ACTIONS, "dynamodb:UpdateItem"),
    "write": (
        *TABLE_READ_ACTIONS,
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ),
}
# S3 actions of an ObjectAccess, on its key patterns only. s3:PutObject is also what
# CreateMultipartUpload, UploadPart and CompleteMultipartUpload need.
OBJECT_READ_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
OBJECT_WRITE_ACTIONS: tuple[str, ...] = ("s3:PutObject",)
SECRET_READ_ACTIONS: tuple[str, ...] = ("secretsmanager:GetSecretValue",)
# What a function with ``completes_steps`` may do: answer a waiting step by its task token. These
# actions support no resource-level permissions (the token names the step), so IAM needs "*".
STEP_CALLBACK_ACTIONS: tuple[str, ...] = (
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
)
# What a ``manages_executions`` function may do to the machine's executions (and ListExecutions on it).
EXECUTION_MANAGER_ACTIONS: tuple[str, ...] = ("states:DescribeExecution", "states:StopExecution")


def executions_of(scope: Construct, machine: sfn.IStateMachine) -> str:
    """The ARN prefix of the state machine's executions (``...:execution:<machine name>``)."""
    name = Arn.split(machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name
    return Stack.of(scope).format_arn(
        service="states", resource="execution", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


def latest_python_runtime() -> str:
    """The newest Python runtime this aws-cdk-lib knows (what cdk-nag's L1 rule compares with)."""
    versions = [r.name for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON]
    return max(versions, key=lambda name: tuple(int(n) for n in name.removeprefix("python").split(".")))


def event_source(
    trigger: Trigger,
    *,
    queues: Mapping[str, sqs.IQueue] | None = None,
    tables: Mapping[str, dynamodb.ITable] | None = None,
) -> lambda_.IEventSource | None:
    """The CDK event source of a spec trigger; ``None`` for API triggers (wired by the REST API),
    state machine triggers (the state machine's Task states invoke the function) and schedule
    triggers (an EventBridge rule invokes it, see :class:`ServalFunction`).

    ``queues`` holds the trigger's queue (SQS) or its on-failure queue (streams), by spec id.
    """
    queues = queues or {}
    if isinstance(trigger, SqsTrigger):
        if trigger.queue not in queues:
            raise ValueError(f"SQS trigger needs queue {trigger.queue!r}")
        return sources.SqsEventSource(
            queues[trigger.queue],
            batch_size=trigger.batch_size,
            max_batching_window=Duration.seconds(trigger.max_batching_window_s),
            max_concurrency=trigger.max_concurrency,
            report_batch_item_failures=trigger.report_batch_item_failures,
        )
    if isinstance(trigger, StreamTrigger):
        if not tables or trigger.table not in tables:
            raise ValueError(f"stream trigger needs table {trigger.table!r}")
        on_failure = None
        if trigger.on_failure_queue is not None:
            if trigger.on_failure_queue not in queues:
                raise ValueError(f"stream trigger needs on-failure queue {trigger.on_failure_queue!r}")
            on_failure = sources.SqsDlq(queues[trigger.on_failure_queue])
        return sources.DynamoEventSource(
            tables[trigger.table],
            starting_position=lambda_.StartingPosition[trigger.starting_position],
            batch_size=trigger.batch_size,
            max_batching_window=Duration.seconds(trigger.max_batching_window_s),
            bisect_batch_on_error=trigger.bisect_batch_on_error,
            retry_attempts=trigger.retry_attempts,
            on_failure=on_failure,
            report_batch_item_failures=trigger.report_batch_item_failures,
        )
    if isinstance(trigger, ApiTrigger | StateMachineTrigger | ScheduleTrigger):
        return None
    raise TypeError(f"unknown trigger {trigger!r}")


class ServalFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        spec: ServalSpec,
        function_spec: FunctionSpec,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        tables: Mapping[str, dynamodb.ITable] | None = None,
        buckets: Mapping[str, s3.IBucket] | None = None,
        bus: events.IEventBus | None = None,
        user_pool: cognito.IUserPool | None = None,
        source: lambda_.IEventSource | None = None,
        send_to: Mapping[str, sqs.IQueue] | None = None,
        secrets: Mapping[str, secretsmanager.ISecret] | None = None,
        state_machines: Mapping[str, sfn.IStateMachine] | None = None,
    ) -> None:
        """``send_to`` maps an environment variable to a queue the function may send to (its URL is the value);
        ``secrets`` holds at least the spec secrets the function reads, by spec id; ``state_machines``
        at least the state machines whose executions it starts."""
        super().__init__(scope, construct_id_)
        fs = function_spec
        tables = tables or {}
        buckets = buckets or {}
        send_to = send_to or {}
        secrets = secrets or {}
        state_machines = state_machines or {}
        self.spec = fs
        self._check_inputs(fs, tables, buckets, bus, user_pool, secrets, state_machines)

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Least-privilege role of {fs.name}",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{fs.name}",
            retention=log_retention(spec.config),
            removal_policy=removal_policy(spec.config),
        )
        environment = POWERTOOLS_DEFAULTS | runtime_environment(
            fs,
            user_pool_id=user_pool.user_pool_id if user_pool is not None else "",
            queue_url=lambda variable, _: send_to[variable].queue_url,
            state_machine_arn=lambda machine_id: state_machines[machine_id].state_machine_arn,
        )

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=fs.name,
            description=fs.description,
            runtime=RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=fs.handler,
            code=code,
            layers=[layer],
            memory_size=fs.memory_mb,
            timeout=Duration.seconds(fs.timeout_s),
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        self.log_group.grant_write(self.role)

        for table_id, mode in fs.table_access.items():
            tables[table_id].grant(self.role, *TABLE_ACCESS[mode])
        object_arns: list[str] = []
        for bucket_id, access in fs.bucket_access.items():
            bucket = buckets[bucket_id]
            if isinstance(access, ObjectAccess):
                object_arns += self._grant_objects(bucket, access)
            else:
                (bucket.grant_read_write if access == "write" else bucket.grant_read)(self.role)
        if fs.publishes_events and bus is not None:
            bus.grant_put_events_to(self.role)
        if fs.manages_users and user_pool is not None:
            user_pool.grant(self.role, *USER_ADMIN_ACTIONS)
        for queue in send_to.values():
            # SendMessage only: Queue.grant_send_messages adds GetQueueAttributes/GetQueueUrl, which a
            # function given the queue's URL never calls.
            queue.grant(self.role, "sqs:SendMessage")
        for secret_id in fs.secrets:
            # GetSecretValue only (no DescribeSecret, which Secret.grant_read adds): the functions read the value.
            # The name-based ARN ends in "-??????", the six characters Secrets Manager appends.
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(SECRET_READ_ACTIONS), resources=[f"{secrets[secret_id].secret_arn}-??????"]
                )
            )
        for machine_id in fs.starts_executions:
            state_machines[machine_id].grant_start_execution(self.role)
        execution_arns = [f"{executions_of(self, state_machines[m])}:*" for m in fs.manages_executions]
        if execution_arns:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(EXECUTION_MANAGER_ACTIONS), resources=execution_arns)
            )
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["states:ListExecutions"],
                    resources=[state_machines[m].state_machine_arn for m in fs.manages_executions],
                )
            )
        if fs.completes_steps:
            self.role.add_to_principal_policy(
                iam.PolicyStatement(actions=list(STEP_CALLBACK_ACTIONS), resources=["*"])
            )
        if source is not None:
            self.function.add_event_source(source)
        if isinstance(fs.trigger, ScheduleTrigger):
            self._schedule(fs, fs.trigger)

        acknowledge_grant_wildcards(
            self.role,
            table_arns=[tables[t].table_arn for t in fs.table_access],
            bucket_arns=[
                buckets[b].bucket_arn for b, m in fs.bucket_access.items() if not isinstance(m, ObjectAccess)
            ],
            object_arns=object_arns,
            execution_arns=execution_arns,
        )
        if RUNTIME.name != latest_python_runtime():
            acknowledge(
                self.function,
                "AwsSolutions-L1",
                f"{RUNTIME.name} is pinned in infra/spec.py together with the layer's wheels "
                f"(pip --python-version); runtime and layer build move to {latest_python_runtime()} together.",
            )

    def _schedule(self, fs: FunctionSpec, trigger: ScheduleTrigger) -> None:
        """An EventBridge schedule that invokes the function at the trigger's rate, through a role of
        its own that may invoke this function only (for schedules of this account)."""
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description=f"Lets the schedule of {fs.name} invoke it",
        )
        scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=f"{fs.name}-schedule",
            description=f"Runs {fs.name} every {trigger.every_minutes} minutes",
            schedule=scheduler.ScheduleExpression.rate(Duration.minutes(trigger.every_minutes)),
            # a run that fails is the next run's work: no retries pile up behind it
            target=scheduler_targets.LambdaInvoke(self.function, role=role, retry_attempts=0),
        )
        acknowledge_grant_wildcards(role, function_arns=[self.function.function_arn])

    def _grant_objects(self, bucket: s3.IBucket, access: ObjectAccess) -> list[str]:
        """Grant ``access`` on ``bucket``'s matching keys; returns the object ARNs granted."""
        granted: list[str] = []
        for actions, patterns in ((OBJECT_READ_ACTIONS, access.read), (OBJECT_WRITE_ACTIONS, access.write)):
            if not patterns:
                continue
            arns = [bucket.arn_for_objects(pattern) for pattern in patterns]
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=arns))
            granted += arns
        return granted

    @staticmethod
    def _check_inputs(
        fs: FunctionSpec,
        tables: Mapping[str, dynamodb.ITable],
        buckets: Mapping[str, s3.IBucket],
        bus: events.IEventBus | None,
        user_pool: cognito.IUserPool | None,
        secrets: Mapping[str, secretsmanager.ISecret],
        state_machines: Mapping[str, sfn.IStateMachine],
    ) -> None:
        if len(set(fs.starts_executions) | set(fs.manages_executions)) > 1:
            raise ValueError(
                f"function {fs.id!r} uses several state machines but has one {STATE_MACHINE_ARN_VARIABLE}"
            )
        unknown = {mode for mode in fs.table_access.values() if mode not in TABLE_ACCESS}
        if unknown:
            raise ValueError(f"function {fs.id!r} has unknown table access {sorted(unknown)}")
        missing = [f"table {t!r}" for t in fs.table_access if t not in tables]
        missing += [f"bucket {b!r}" for b in fs.bucket_access if b not in buckets]
        missing += [f"secret {s!r}" for s in fs.secrets if s not in secrets]
        missing += [
            f"state machine {m!r}"
            for m in (*fs.starts_executions, *fs.manages_executions)
            if m not in state_machines
        ]
        if fs.publishes_events and bus is None:
            missing.append("the event bus")
        if fs.manages_users and user_pool is None:
            missing.append("the user pool")
        if missing:
            raise ValueError(f"function {fs.id!r} needs {', '.join(missing)}")
