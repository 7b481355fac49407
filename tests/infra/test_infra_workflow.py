"""The task workflow: the state machine built from the spec's ASL file and substitutions, its role, its starters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn_helpers import actions_of, flat, only, resources, resources_of, role_statements, spec_functions

from infra.constructs.workflow import log_group_name

ENVS = ("dev", "prod")
CONCERN = "Workflow"


def _machine(synth: Any, env: str, machine_id: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The template, logical id and properties of one spec state machine."""
    name = synth.envs[env].spec.state_machines[machine_id].name
    template = synth.raw(env, CONCERN)
    (found,) = [
        (logical_id, r["Properties"])
        for logical_id, r in resources(template, "AWS::StepFunctions::StateMachine").items()
        if r["Properties"]["StateMachineName"] == name
    ]
    return template, *found


def _definition_file(synth: Any, props: dict[str, Any]) -> dict[str, Any]:
    """The definition CDK staged as an asset (DefinitionS3Location), read from the cloud assembly."""
    key = props["DefinitionS3Location"]["Key"]
    document: dict[str, Any] = json.loads((synth.outdir / f"asset.{key}").read_text())
    return document


def _substitute(node: Any, values: dict[str, Any]) -> Any:
    """Step Functions' DefinitionSubstitutions: ``${Name}`` -> its value (a whole-string placeholder only)."""
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    if isinstance(node, str) and (match := re.fullmatch(r"\$\{(\w+)\}", node)):
        return values[match.group(1)]
    return node


@pytest.mark.parametrize("env", ENVS)
def test_every_spec_state_machine_is_built_from_its_file_with_the_spec_substitutions(synth, env):
    spec = synth.envs[env].spec
    assert spec.state_machines
    for machine_id, machine in spec.state_machines.items():
        # Given the synthesized state machine of a spec machine
        template, _, props = _machine(synth, env, machine_id)
        # Then it has the spec's name and type, and its definition is the ASL file as it is
        assert props["StateMachineName"] == machine.name
        assert props["StateMachineType"] == machine.type
        assert _definition_file(synth, props) == json.loads(machine.definition_file.read_text())
        # And each placeholder is replaced by the ARN of the spec function it names
        functions = spec_functions(synth, env)
        expected = {}
        for placeholder, function_id in machine.substitutions.items():
            function_template, function_logical_id, _ = functions[function_id]
            assert function_template is template  # same stack: a plain reference, no export
            expected[placeholder] = {"Fn::GetAtt": [function_logical_id, "Arn"]}
        assert props["DefinitionSubstitutions"] == expected


def test_the_resolved_definition_invokes_the_workflow_function_in_every_task(synth):
    # Given the task machine's definition with the synthesized substitutions applied
    _, _, props = _machine(synth, "dev", "task")
    definition = _substitute(_definition_file(synth, props), props["DefinitionSubstitutions"])
    _, workflow_logical_id, _ = spec_functions(synth, "dev")["workflow"]
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}
    # Then no placeholder is left, and every Task invokes the workflow function
    assert "${" not in json.dumps(definition)
    assert tasks
    for name, state in tasks.items():
        assert state["Resource"].startswith("arn:aws:states:::lambda:invoke"), name
        assert state["Parameters"]["FunctionName"] == {"Fn::GetAtt": [workflow_logical_id, "Arn"]}, name


@pytest.mark.parametrize("env", ENVS)
def test_the_state_machine_logs_every_event_without_payloads_and_is_traced(synth, env):
    # Given the task machine and its log group
    template, _, props = _machine(synth, env, "task")
    spec = synth.envs[env].spec
    (log_group_id,) = [
        logical_id
        for logical_id, r in resources(template, "AWS::Logs::LogGroup").items()
        if r["Properties"]["LogGroupName"] == log_group_name(spec.state_machines["task"])
    ]
    # Then it logs ALL events to that log group, execution data off, and X-Ray traces it
    assert props["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group_id, "Arn"]}}}],
        "IncludeExecutionData": False,
        "Level": "ALL",
    }
    assert props["TracingConfiguration"] == {"Enabled": True}
    # And its logs are kept as long as the environment keeps logs
    retention = template["Resources"][log_group_id]["Properties"]["RetentionInDays"]
    assert retention == spec.config.log_retention_days


LOG_DELIVERY = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
TRACING = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}


@pytest.mark.parametrize("env", ENVS)
def test_the_state_machine_role_may_only_invoke_its_functions_log_and_trace(synth, env):
    # Given the task machine's role and its statements
    template, _, props = _machine(synth, env, "task")
    _, workflow_logical_id, _ = spec_functions(synth, env)["workflow"]
    workflow_arn = {"Fn::GetAtt": [workflow_logical_id, "Arn"]}
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    assert template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Principal"
    ] == {"Service": "states.amazonaws.com"}
    found: dict[str, list[Any]] = {}
    for statement in role_statements(template, {"Ref": role_id}):
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        for action in actions_of(statement):
            found.setdefault(action, []).extend(resources_of(statement))
    # Then it invokes exactly the workflow function (and its versions and aliases) ...
    assert found.pop("lambda:InvokeFunction") == [workflow_arn, {"Fn::Join": ["", [workflow_arn, ":*"]]}]
    # ... and otherwise only sets up its log delivery and writes traces, which IAM only grants on "*"
    assert set(found) == LOG_DELIVERY | TRACING
    assert all(labels == ["*"] for labels in found.values())


@pytest.mark.parametrize("env", ENVS)
def test_starters_get_the_machine_arn_and_may_only_start_its_executions(synth, env):
    spec = synth.envs[env].spec
    starters = [f for f in spec.functions.values() if f.starts_executions]
    assert [f.id for f in starters] == ["starter"]
    for fn in starters:
        # Given a function that starts executions, and the machine it starts
        template, _, props = spec_functions(synth, env)[fn.id]
        (machine_id,) = fn.starts_executions
        _, machine_logical_id, _ = _machine(synth, env, machine_id)
        # Then STATE_MACHINE_ARN is that machine's ARN, and StartExecution is allowed on it alone
        assert template is synth.raw(env, CONCERN)
        assert props["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {"Ref": machine_logical_id}
        role_ref = {"Ref": props["Role"]["Fn::GetAtt"][0]}
        starts = [
            s
            for s in role_statements(template, role_ref)
            if any(a.startswith("states:") for a in actions_of(s))
        ]
        assert [(actions_of(s), resources_of(s)) for s in starts] == [
            (["states:StartExecution"], [{"Ref": machine_logical_id}])
        ]


def test_functions_invoked_by_the_state_machine_have_no_event_source(synth):
    # Given the functions the state machine's Task states invoke
    spec = synth.envs["dev"].spec
    invoked = {f for m in spec.state_machines.values() for f in m.substitutions.values()}
    assert invoked == {"workflow"}
    for function_id in invoked:
        template, logical_id, _ = spec_functions(synth)[function_id]
        # Then no event source mapping feeds them
        assert not [
            m
            for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": logical_id}
        ]


def test_task_created_events_reach_the_executions_queue_in_the_workflow_stack(synth):
    # Given the rule that routes task.created events (it sits with the queue it targets)
    spec = synth.envs["dev"].spec
    (rule_spec,) = [r for r in spec.event_rules if "task.created" in r.pattern]
    template = synth.raw("dev", CONCERN)
    _, rule = only(template, "AWS::Events::Rule")
    # Then it sends matching events from the bus to the executions queue, which the starter consumes
    assert rule["Properties"]["Name"] == rule_spec.name
    assert rule["Properties"]["EventPattern"] == {"source": ["serval"], "detail-type": ["task.created"]}
    (target,) = rule["Properties"]["Targets"]
    queue_ids = {
        q["Properties"]["QueueName"]: logical_id
        for logical_id, q in resources(template, "AWS::SQS::Queue").items()
    }
    assert target["Arn"] == {"Fn::GetAtt": [queue_ids[spec.queues[rule_spec.queue].name], "Arn"]}
    assert spec.functions["starter"].trigger.queue == rule_spec.queue  # type: ignore[union-attr]


def test_no_other_stack_references_the_state_machine_and_the_workflow_stack_exports_nothing(synth):
    # Given every stack of the dev app
    built = synth.envs["dev"]
    names = [json.dumps(m.name) for m in built.spec.state_machines.values()]  # quoted: whole names only
    # Then the Workflow stack exports nothing (no cross-stack reference, hence no cycle) ...
    assert not [o for o in synth.raw("dev", CONCERN).get("Outputs", {}).values() if "Export" in o]
    # ... the api completes steps by task token without naming any state machine ...
    for concern in built.stacks:
        if concern != CONCERN:
            text = json.dumps(synth.raw("dev", concern))
            assert "AWS::StepFunctions" not in text and "arn:aws:states" not in text, concern
            assert not any(name in text for name in names), concern
    # ... and the Workflow stack deploys after the tables, secrets and bus it uses by name
    assert built.stacks["Data"] in built.stacks[CONCERN].dependencies


def test_the_api_may_complete_waiting_steps_only_by_task_token(synth):
    # Given the api's role
    template, _, props = spec_functions(synth)["api"]
    callbacks = {
        action: resources_of(s)
        for s in role_statements(template, {"Ref": props["Role"]["Fn::GetAtt"][0]})
        for action in actions_of(s)
        if action.startswith("states:")
    }
    # Then it may send task success, failure and heartbeats (IAM only accepts "*" for them) and nothing else
    assert callbacks == {
        "states:SendTaskSuccess": ["*"],
        "states:SendTaskFailure": ["*"],
        "states:SendTaskHeartbeat": ["*"],
    }
    assert flat(props["Environment"]["Variables"]).find("STATE_MACHINE_ARN") == -1
