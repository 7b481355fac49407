"""Least privilege, exactly: every function's role allows the listed actions on the listed resources, nothing else.

Resources are compared by label (``table:audit``, ``bucket:data/*``, ``queue:jobs``,
``secret:audit-seal-key`` ...; environment prefixes stripped), so the same
expectations hold in every environment.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cfn_helpers import actions_of, flat, resources_of, role_statements, spec_functions

from infra.config import load
from infra.constructs.function import ServalFunction
from infra.spec import build

ENVS = ("dev", "prod")

TABLE_READ = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
BUCKET_READ_WRITE = (
    "s3:GetObject*",
    "s3:GetBucket*",
    "s3:List*",
    "s3:DeleteObject*",
    "s3:PutObject",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:Abort*",
)
BUCKET_READ = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
STREAM_READ = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
SQS_CONSUME = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
# What CDK's SqsDlq grants for a stream's on-failure destination (Queue.grant_send_messages).
ON_FAILURE_SEND = ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
USER_ADMIN = (
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
SEAL_KEY = (["secretsmanager:GetSecretValue"], ["secret:audit-seal-key"])
# Completing a waiting workflow step: the task token names the step, so IAM only accepts Resource "*".
STEP_CALLBACKS = (["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"], ["*"])
# Actions IAM only accepts on Resource "*".
STAR_ONLY = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "dynamodb:ListStreams",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
}


def table(table_id: str) -> list[str]:
    return [f"table:{table_id}", f"table:{table_id}/index/*"]


def bucket(bucket_id: str) -> list[str]:
    return [f"bucket:{bucket_id}", f"bucket:{bucket_id}/*"]


def grants(function_id: str, *pairs: tuple[Iterable[str], Iterable[str]]) -> dict[str, set[str]]:
    """action -> resource labels; every function also writes its own log group and traces."""
    found: dict[str, set[str]] = {}
    for actions, labels in (
        (["logs:CreateLogStream", "logs:PutLogEvents"], [f"log-group:{function_id}"]),
        (["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
        *pairs,
    ):
        for action in actions:
            found.setdefault(action, set()).update(labels)
    return found


EXPECTED: dict[str, dict[str, set[str]]] = {
    "api": grants(
        "api",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("deliveries")),  # logs test deliveries, reads the log
        # presigned uploads; bulk id lists and the audit evidence of bulk changes
        (
            ["s3:PutObject"],
            ["bucket:data/projects/*", "bucket:exports/bulk/*", "bucket:exports/audit-evidence/*"],
        ),
        # presigned GETs of tasks' media, import error reports and finished exports
        (
            ["s3:GetObject"],
            [
                "bucket:data/projects/*",
                "bucket:data/reports/*",
                "bucket:exports/audit-exports/*",
                "bucket:exports/dataset-exports/*",
            ],
        ),
        (USER_ADMIN, ["user-pool"]),
        # refills after a delete; replays of webhook deliveries
        (["sqs:SendMessage"], ["queue:jobs", "queue:executions", "queue:webhooks"]),
        SEAL_KEY,
        STEP_CALLBACKS,
    ),
    "ingest": grants(
        "ingest",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        (BUCKET_READ_WRITE, bucket("data")),
        (SQS_CONSUME, ["queue:ingest"]),
        # poison records; a large manifest's ranges (and a one-range import's continuation)
        (["sqs:SendMessage"], ["queue:ingest-dlq", "queue:ingest-ranges"]),
        SEAL_KEY,
    ),
    "ingest-ranges": grants(
        "ingest-ranges",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        # manifests (ranged GETs) and the ranges' error lines; the import's error report
        (["s3:GetObject"], ["bucket:data/projects/*", "bucket:data/reports/*"]),
        (["s3:PutObject"], ["bucket:data/reports/*"]),
        (SQS_CONSUME, ["queue:ingest-ranges"]),
        # a range near the deadline continues; a poison range goes to the DLQ
        (["sqs:SendMessage"], ["queue:ingest-ranges", "queue:ingest-ranges-dlq"]),
        SEAL_KEY,
    ),
    "jobs": grants(
        "jobs",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        (BUCKET_READ_WRITE, bucket("exports")),
        (BUCKET_READ, bucket("data")),  # image headers, for dataset exports' pixel sizes
        (SQS_CONSUME, ["queue:jobs"]),
        # jobs: a paused job or an export's shards continue there; executions: refills after a delete
        (["sqs:SendMessage"], ["queue:jobs", "queue:executions"]),
        SEAL_KEY,
        STEP_CALLBACKS,  # a bulk delete ends its tasks' waiting steps
    ),
    "jobs-dlq": grants(
        "jobs-dlq",
        ([*TABLE_READ, "dynamodb:UpdateItem"], table("tasks")),  # fails the job: no put, no delete
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        (SQS_CONSUME, ["queue:jobs-dlq"]),
        (["sqs:SendMessage"], ["queue:jobs-dead"]),  # keeps each handled message
        SEAL_KEY,
    ),
    "events": grants(
        "events",
        (STREAM_READ, ["stream:tasks"]),
        (["dynamodb:ListStreams"], ["*"]),
        (ON_FAILURE_SEND, ["queue:events-failed"]),
        (["events:PutEvents"], ["event-bus:events"]),
    ),
    "chainer": grants(
        "audit-chainer",
        ([*TABLE_READ, "dynamodb:UpdateItem"], table("audit")),
        (STREAM_READ, ["stream:audit"]),
        (["dynamodb:ListStreams"], ["*"]),
        (ON_FAILURE_SEND, ["queue:audit-chain-failed"]),
        SEAL_KEY,
    ),
    "workflow": grants(
        "workflow",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),
        (["sqs:SendMessage"], ["queue:executions"]),
        SEAL_KEY,
    ),
    "starter": grants(
        "starter",
        ([*TABLE_READ, *TABLE_WRITE], table("tasks")),
        (SQS_CONSUME, ["queue:executions"]),
        (["states:StartExecution"], ["state-machine:task"]),
    ),
    "reconciler": grants(
        "reconciler",
        ([*TABLE_READ, "dynamodb:UpdateItem"], table("tasks")),  # repairs task items: no put, no delete
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),  # each repair is audited
        (["sqs:SendMessage"], ["queue:executions"]),  # a lost execution is re-created by the starter
        # which executions run; is a step's execution still running; stop one whose task is gone
        (["states:ListExecutions"], ["state-machine:task"]),
        (["states:DescribeExecution", "states:StopExecution"], ["executions:task"]),
        SEAL_KEY,
        STEP_CALLBACKS,  # delivers overdue handoffs
    ),
    "webhooks": grants(
        "webhooks",
        # subscriptions' failure counts and their disabling: no put, no delete
        ([*TABLE_READ, "dynamodb:UpdateItem"], table("tasks")),
        ([*TABLE_READ, "dynamodb:PutItem"], table("audit")),  # a disabling is audited
        ([*TABLE_READ, *TABLE_WRITE], table("deliveries")),  # the delivery log, in batches
        (SQS_CONSUME, ["queue:webhooks"]),
        # retries wait in its own queue; spent deliveries and poison messages go to the DLQ
        (["sqs:SendMessage"], ["queue:webhooks", "queue:webhooks-dlq"]),
        SEAL_KEY,
    ),
}

_SPEC = build(load("dev"), "123456789012", "us-east-1")


def _label(template: dict[str, Any], prefix: str, resource: Any) -> str:
    """A readable, environment-free name for one policy resource."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = template["Resources"][resource["Fn::GetAtt"][0]]
        props = target["Properties"]
        if target["Type"] == "AWS::SQS::Queue":
            return f"queue:{props['QueueName'].removeprefix(f'{prefix}-')}"
        if target["Type"] == "AWS::Logs::LogGroup":
            return f"log-group:{props['LogGroupName'].removeprefix(f'/aws/lambda/{prefix}-')}"
    if isinstance(resource, dict) and "Ref" in resource:
        target = template["Resources"][resource["Ref"]]
        if target["Type"] == "AWS::StepFunctions::StateMachine":
            return f"state-machine:{target['Properties']['StateMachineName'].removeprefix(f'{prefix}-')}"
    if isinstance(resource, dict) and "Fn::GetStackOutput" in resource:
        output = resource["Fn::GetStackOutput"]["OutputName"]
        if "UserPool" in output:
            return "user-pool"
        if stream := re.search(r"Tables(\w+?)Table\w*StreamArn", output):
            return f"stream:{stream.group(1).lower()}"
    text = flat(resource)
    # the executions of a state machine of the template (its name is split out of its ARN)
    if ":execution:" in text and (ref := re.search(r'\{"Ref": "(\w+)"\}\]\}\]\}:\*$', text)):
        target = template["Resources"][ref.group(1)]
        if target["Type"] == "AWS::StepFunctions::StateMachine":
            return f"executions:{target['Properties']['StateMachineName'].removeprefix(f'{prefix}-')}"
    patterns = (
        (r"^\*$", "*"),
        (rf":dynamodb:[^:]+:.+:table/{prefix}-([\w-]+?)(/index/\*)?$", r"table:\1\2"),
        (rf"^arn:aws:s3:::{prefix}-([a-z]+)-[^/]+(/.*)?$", r"bucket:\1\2"),
        (rf":sqs:[^:]+:.+:{prefix}-([\w-]+)$", r"queue:\1"),
        (rf":secretsmanager:[^:]+:.+:secret:{prefix}/([\w-]+)-\?{{6}}$", r"secret:\1"),
        (rf":events:[^:]+:.+:event-bus/{prefix}-([\w-]+)$", r"event-bus:\1"),
    )
    for pattern, label in patterns:
        if match := re.search(pattern, text):
            return match.expand(label)
    raise AssertionError(f"unrecognised policy resource {text}")


def _grants_of(synth: Any, env: str, function_id: str) -> dict[str, set[str]]:
    template, _, props = spec_functions(synth, env)[function_id]
    prefix = synth.envs[env].spec.prefix
    found: dict[str, set[str]] = {}
    for statement in role_statements(template, {"Ref": props["Role"]["Fn::GetAtt"][0]}):
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        labels = {_label(template, prefix, r) for r in resources_of(statement)}
        for action in actions_of(statement):
            found.setdefault(action, set()).update(labels)
    return found


def test_every_spec_function_has_an_expected_grant_set():
    # Given the spec's functions
    # Then this module states the exact grants of each one (a new function needs its set here)
    assert set(EXPECTED) == set(_SPEC.functions)


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize(
    "function_id",
    [
        "events",
        "api",
        "ingest",
        "ingest-ranges",
        "jobs",
        "jobs-dlq",
        "chainer",
        "workflow",
        "starter",
        "webhooks",
        "reconciler",
    ],
)
def test_each_role_allows_exactly_its_expected_actions_on_its_expected_resources(synth, env, function_id):
    # Given the synthesized role of one function
    # When its statements are collected as action -> resources
    found = _grants_of(synth, env, function_id)
    # Then they are exactly the expected ones: no extra action, no extra or missing resource
    assert found == EXPECTED[function_id]


@pytest.mark.parametrize("env", ENVS)
def test_resource_star_only_where_iam_requires_it(synth, env):
    for function_id in synth.envs[env].spec.functions:
        # Given every function's grants
        found = _grants_of(synth, env, function_id)
        # Then "*" is the resource only of actions without resource-level permissions, and only alone
        for action, labels in found.items():
            assert ("*" in labels) == (action in STAR_ONLY), (function_id, action, labels)
            assert labels == {"*"} or "*" not in labels


@pytest.mark.parametrize("env", ENVS)
def test_only_the_audit_writers_and_the_chainer_touch_the_audit_table(synth, env):
    # Given every function's grants
    touching = {
        function_id
        for function_id in synth.envs[env].spec.functions
        if any(
            label.startswith(("table:audit", "stream:audit"))
            for labels in _grants_of(synth, env, function_id).values()
            for label in labels
        )
    }
    # Then the functions that write audit records, and the chainer, are the only ones
    assert touching == {
        "api",
        "ingest",
        "ingest-ranges",
        "jobs",
        "jobs-dlq",
        "workflow",
        "chainer",
        "webhooks",
        "reconciler",
    }


@pytest.mark.parametrize("env", ENVS)
def test_no_role_can_delete_or_batch_write_audit_records_and_only_the_chainer_updates_them(synth, env):
    for function_id in synth.envs[env].spec.functions:
        # Given the actions each function may take on the audit table
        found = _grants_of(synth, env, function_id)
        on_audit = {action for action, labels in found.items() if "table:audit" in labels}
        # Then nobody may delete (TTL expiry is DynamoDB's own), and only the chainer may update
        assert not on_audit & {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}, function_id
        assert ("dynamodb:UpdateItem" in on_audit) == (function_id == "chainer"), function_id


@pytest.mark.parametrize(
    ("level", "writes"),
    [
        ("read", set()),
        ("append", {"dynamodb:PutItem"}),
        ("update", {"dynamodb:UpdateItem"}),
        ("write", set(TABLE_WRITE)),
    ],
)
def test_table_access_levels_grant_reads_plus_their_writes_only(level, writes):
    # Given a function whose spec gives one table at one access level
    stack = Stack(App(), "Probe", env=Environment(account="123456789012", region="us-east-1"))
    function_spec = dataclasses.replace(
        _SPEC.functions["events"],
        table_access={"audit": level},  # type: ignore[dict-item]
        publishes_events=False,
    )
    audit = dynamodb.Table.from_table_attributes(stack, "Audit", table_name="audit", global_indexes=["GSI1"])
    ServalFunction(
        stack,
        "Fn",
        spec=_SPEC,
        function_spec=function_spec,
        code=lambda_.Code.from_bucket(s3.Bucket.from_bucket_name(stack, "Code", "probe-code"), "probe.zip"),
        layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:probe:1"
        ),
        tables={"audit": audit},
    )
    # When the role's table statements are read
    template = Template.from_stack(stack).to_json()
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    on_table = {
        action
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(flat(r).endswith(":table/audit") for r in resources_of(statement))
        for action in actions_of(statement)
    }
    # Then the table and its indexes allow the reads plus exactly the level's writes
    assert on_table == set(TABLE_READ) | writes


S3_DELETES = {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteObject*", "s3:*"}


@pytest.mark.parametrize("env", ENVS)
def test_the_api_role_reaches_only_object_prefixes_and_cannot_delete_or_list(synth, env):
    # Given the api function's grants on the buckets
    found = _grants_of(synth, env, "api")
    on_buckets = {action: labels for action, labels in found.items() if action.startswith("s3:")}
    # Then it may only read and write objects: no delete (of objects or their versions), no listing,
    # no bucket-wide action
    assert set(on_buckets) == {"s3:GetObject", "s3:PutObject"}
    assert not set(found) & S3_DELETES
    # And every resource is a key prefix below a bucket, never a whole bucket or all its objects
    for labels in on_buckets.values():
        for label in labels:
            _, _, pattern = label.removeprefix("bucket:").partition("/")
            assert pattern and pattern != "*" and pattern.endswith("/*"), label


def test_the_api_grants_cover_the_keys_it_presigns_and_writes():
    # Given the object keys the API hands out or writes, built by the same functions the code uses
    from fnmatch import fnmatchcase

    from serval import keys
    from serval.domain.exports import ExportFormat, dataset_export_key
    from serval.domain.jobs import AuditExportFormat, audit_export_key

    access = _SPEC.functions["api"].bucket_access
    used = {
        ("data", "write"): [f"{_SPEC.upload_prefix}p-1/images/cat.png"],
        ("data", "read"): [
            keys.import_error_report_key("p-1", "imp-1"),
            keys.project_data_prefix("p-1") + "images/cat.png",
        ],
        ("exports", "write"): [
            keys.bulk_ids_key("p-1", "job-1"),
            keys.audit_bulk_ids_key("project-p-1", "a-1"),
        ],
        ("exports", "read"): [
            *(audit_export_key("p-1", "job-1", fmt) for fmt in AuditExportFormat),
            *(dataset_export_key("p-1", "job-1", fmt) for fmt in ExportFormat),
        ],
    }
    for (bucket_id, level), object_keys in used.items():
        patterns = getattr(access[bucket_id], level)
        for key in object_keys:
            # Then each key matches one of the role's patterns at that level (a moved key fails here)
            assert any(fnmatchcase(key, pattern) for pattern in patterns), (bucket_id, level, key)
