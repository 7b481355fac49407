"""cdk-nag acknowledgements, always on one construct and always with a reason.

cdk-nag 3 reads acknowledgements from ``Validations.of(construct).acknowledge``
on the violating resource or any of its ancestors. Acknowledge on the narrowest
construct that owns the finding, never on a stack.

IAM wildcard findings (``AwsSolutions-IAM5[...]``) are not acknowledged by hand:
:func:`acknowledge_grant_wildcards` reads a role policy after the grants were made,
reproduces cdk-nag's finding ids, and acknowledges only the wildcards that CDK's
``grant*`` methods generate (GSI ARNs, object ARNs, the S3 action families, function
versions and aliases, and the few actions that have no resource-level permissions). Any other wildcard
stays a finding and fails the synth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

# Actions without resource-level permissions (IAM only accepts Resource "*" for them), by what uses them.
RESOURCE_STAR_USES: dict[str, frozenset[str]] = {
    "X-Ray tracing": frozenset(
        {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        }
    ),
    "stream discovery": frozenset({"dynamodb:ListStreams"}),
    # A waiting step is addressed by its task token, not by a state machine or execution ARN.
    "completing waiting workflow steps by task token": frozenset(
        {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
    ),
    # What StateMachine(logs=...) grants: Step Functions sets up the log delivery to the log group.
    "Step Functions log delivery to CloudWatch Logs": frozenset(
        {
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        }
    ),
}
RESOURCE_STAR_ACTIONS = frozenset().union(*RESOURCE_STAR_USES.values())

# The wildcard action families that Bucket.grant_read / grant_read_write emit.
S3_GRANT_ACTIONS = frozenset({"s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"})


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children only)."""
    if not reason.strip():
        raise ValueError(f"acknowledging {rule_id} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def flatten_cfn_reference(node: Any) -> str:
    """Python port of cdk-nag's ``flattenCfnReference``, so finding ids can be computed here."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, Mapping):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def wildcard_findings(document: Mapping[str, Any]) -> list[tuple[str, frozenset[str]]]:
    """cdk-nag's IAM5 findings of a resolved policy document, with the actions of each statement."""
    findings: list[tuple[str, frozenset[str]]] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = frozenset(str(a) for a in _as_list(statement.get("Action", [])))
        findings += [(f"Action::{a}", actions) for a in sorted(actions) if "*" in a]
        for resource in _as_list(statement.get("Resource", [])):
            flat = flatten_cfn_reference(resource)
            if "*" in flat:
                findings.append((f"Resource::{flat}", actions))
    return findings


def _grant_reason(
    finding: str,
    actions: frozenset[str],
    table_arns: Iterable[str],
    bucket_arns: Iterable[str],
    function_arns: Iterable[str] = (),
    object_arns: Iterable[str] = (),
    execution_arns: Iterable[str] = (),
) -> str | None:
    if finding.startswith("Action::"):
        action = finding.removeprefix("Action::")
        if action in S3_GRANT_ACTIONS:
            return f"{action} is the action family Bucket.grant_read/grant_read_write emits; scoped to this function's buckets"
        return None
    resource = finding.removeprefix("Resource::")
    if resource == "*":
        if actions <= RESOURCE_STAR_ACTIONS:
            uses = [use for use, named in RESOURCE_STAR_USES.items() if actions & named]
            return f"{', '.join(sorted(actions))} support no resource-level permissions ({', '.join(uses)})"
        return None
    for arn in table_arns:
        if resource == f"{arn}/index/*":
            return "Table.grant_* adds the table's GSIs; the function queries them (no Scan)"
    for arn in bucket_arns:
        if resource == f"{arn}/*":
            return "Bucket.grant_* covers the bucket's objects; object keys are only known at run time"
    if resource in object_arns and actions <= {"s3:GetObject", "s3:PutObject"}:
        return "object-level access under a key prefix the spec declares (ObjectAccess); keys are only known at run time"
    for arn in function_arns:
        if resource == f"{arn}:*" and actions == {"lambda:InvokeFunction"}:
            return "Function.grant_invoke covers the function's versions and aliases; scoped to this one function"
    if resource in execution_arns and actions <= {"states:DescribeExecution", "states:StopExecution"}:
        return (
            "Describe/StopExecution on one state machine's executions; their names are only known at run time"
        )
    return None


def acknowledge_grant_wildcards(
    role: iam.Role,
    *,
    table_arns: Iterable[Any] = (),
    bucket_arns: Iterable[Any] = (),
    function_arns: Iterable[Any] = (),
    object_arns: Iterable[Any] = (),
    execution_arns: Iterable[Any] = (),
) -> list[str]:
    """Acknowledge the IAM5 findings that ``grant*`` calls produced on ``role``'s default policy.

    ``table_arns``, ``bucket_arns`` and ``function_arns`` are the ARNs (tokens are fine) of
    the tables, buckets and functions (invoke) this role was granted on, ``object_arns`` the key
    patterns of its object-level grants, ``execution_arns`` the execution patterns it may
    describe; a wildcard on anything else is not acknowledged. Returns the acknowledged rule ids.
    """
    policy = role.node.try_find_child("DefaultPolicy")
    if not isinstance(policy, iam.Policy):
        return []
    stack = Stack.of(role)
    document = stack.resolve(policy.document)
    tables = [flatten_cfn_reference(stack.resolve(arn)) for arn in table_arns]
    buckets = [flatten_cfn_reference(stack.resolve(arn)) for arn in bucket_arns]
    functions = [flatten_cfn_reference(stack.resolve(arn)) for arn in function_arns]
    objects = [flatten_cfn_reference(stack.resolve(arn)) for arn in object_arns]
    executions = [flatten_cfn_reference(stack.resolve(arn)) for arn in execution_arns]
    # cdk-nag reports each distinct finding id once per policy, so an id is acknowledged only
    # when every statement that produces it is grant-generated.
    reasons: dict[str, list[str | None]] = {}
    for finding, actions in wildcard_findings(document):
        reasons.setdefault(finding, []).append(
            _grant_reason(finding, actions, tables, buckets, functions, objects, executions)
        )
    acknowledged: list[str] = []
    for finding, found in reasons.items():
        if None in found:
            continue
        rule_id = f"AwsSolutions-IAM5[{finding}]"
        acknowledge(policy, rule_id, str(found[0]))
        acknowledged.append(rule_id)
    return acknowledged


_ACK_KEY = re.compile(r"^(?:annotation::)?", re.IGNORECASE)


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Every acknowledgement under ``scope``: construct path -> {rule id: reason}. For tests."""
    found: dict[str, dict[str, str]] = {}
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY and entry.data:
                for rule_id, reason in dict(entry.data).items():
                    found.setdefault(construct.node.path, {})[_ACK_KEY.sub("", rule_id)] = str(reason)
    return found
