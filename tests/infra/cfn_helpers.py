"""Helpers to read synthesized CloudFormation templates in the infra tests."""

from __future__ import annotations

import json
from typing import Any


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for one resource type of a synthesized template."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def flat(value: Any) -> str:
    """A CloudFormation value as one string (Fn::Join flattened), for substring checks."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(flat(p) for p in parts)
    return json.dumps(value, sort_keys=True)


def queues(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Queue name -> (logical id, properties)."""
    return {
        q["Properties"]["QueueName"]: (logical_id, q["Properties"])
        for logical_id, q in resources(template, "AWS::SQS::Queue").items()
    }


def spec_functions(synth: Any, env: str = "dev") -> dict[str, tuple[dict[str, Any], str, dict[str, Any]]]:
    """Spec function id -> (its stack's template, function logical id, function properties), over every stack."""
    spec = synth.envs[env].spec
    by_name = {f.name: f.id for f in spec.functions.values()}
    found = {}
    for concern in synth.envs[env].stacks:
        template = synth.raw(env, concern)
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items():
            name = fn["Properties"].get("FunctionName")
            if name in by_name:
                found[by_name[name]] = (template, logical_id, fn["Properties"])
    return found


def role_statements(template: dict[str, Any], role_ref: dict[str, str]) -> list[dict[str, Any]]:
    """Every statement of every policy attached to ``role_ref`` (``{"Ref": role logical id}``)."""
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if role_ref in policy["Properties"]["Roles"]
        for statement in statements(policy)
    ]
