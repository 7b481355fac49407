"""Every spec function is deployed as specified, with its own least-privilege role."""

from __future__ import annotations

import pytest
from cfn_helpers import actions_of, flat, resources_of, role_statements, spec_functions


def _actions(template, role_ref):
    return {action for s in role_statements(template, role_ref) for action in actions_of(s)}


def test_every_spec_function_is_deployed_once_as_specified(synth):
    # Given the dev spec
    spec = synth.envs["dev"].spec
    # When the functions of the compute stacks are read
    functions = spec_functions(synth)
    # Then each FunctionSpec became one function with its handler, runtime, size, timeout and tracing
    assert set(functions) == set(spec.functions)
    for function_id, (_, _, props) in functions.items():
        fs = spec.functions[function_id]
        assert props["Handler"] == fs.handler
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["MemorySize"] == fs.memory_mb
        assert props["Timeout"] == fs.timeout_s
        assert props["Description"] == fs.description
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        # And its environment contains the spec's environment verbatim (names as the stack resolves them)
        variables = props["Environment"]["Variables"]
        for key, value in fs.environment.items():
            assert key in variables
            if "${Token" not in value:
                assert variables[key] == value
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_function_logs_to_its_own_group_with_the_configured_retention(synth, env):
    # Given the environment's config
    config = synth.envs[env].spec.config
    for _, (template, _, props) in spec_functions(synth, env).items():
        # When the function's log group is looked up
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        group = template["Resources"][group_id]["Properties"]
        # Then it is named after the function and keeps logs for log_retention_days
        assert group["LogGroupName"] == f"/aws/lambda/{props['FunctionName']}"
        assert group["RetentionInDays"] == config.log_retention_days


def test_each_function_has_its_own_role_without_managed_policies(synth):
    # Given the deployed functions
    functions = spec_functions(synth)
    roles = {function_id: props["Role"]["Fn::GetAtt"][0] for function_id, (_, _, props) in functions.items()}
    # Then no two functions share a role
    assert len(set(roles.values())) == len(roles)
    for function_id, (template, _, _) in functions.items():
        role = template["Resources"][roles[function_id]]
        # And each role is assumable by Lambda only and carries no AWS managed policy
        assert role["Type"] == "AWS::IAM::Role"
        assert "ManagedPolicyArns" not in role["Properties"]
        principals = [s["Principal"] for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]]
        assert principals == [{"Service": "lambda.amazonaws.com"}]


def test_no_function_policy_grants_whole_services(synth):
    # Given every function role's statements
    for template, _, props in spec_functions(synth).values():
        role_ref = {"Ref": props["Role"]["Fn::GetAtt"][0]}
        for statement in role_statements(template, role_ref):
            # Then no statement allows a service-wide action like "s3:*" or "*"
            assert not [a for a in actions_of(statement) if a == "*" or a.endswith(":*")], statement
            # And "*" resources appear only for actions that have no resource-level permissions
            if "*" in resources_of(statement):
                assert set(actions_of(statement)) <= {
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "dynamodb:ListStreams",
                    # completing a waiting workflow step: the task token names the step
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                    "states:SendTaskHeartbeat",
                }


def test_events_function_publishes_events_but_touches_no_bucket_or_table_items(synth):
    # Given the events function (it only turns the stream into bus events)
    template, _, props = spec_functions(synth)["events"]
    role_ref = {"Ref": props["Role"]["Fn::GetAtt"][0]}
    actions = _actions(template, role_ref)
    # Then it may put events on the spec's bus and read the stream
    put = [s for s in role_statements(template, role_ref) if "events:PutEvents" in actions_of(s)]
    assert len(put) == 1
    assert flat(put[0]["Resource"]).endswith(f":event-bus/{synth.envs['dev'].spec.event_bus_name}")
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"} <= actions
    # But it has no S3, no item-level DynamoDB and no Cognito permissions
    assert not [a for a in actions if a.startswith(("s3:", "cognito-idp:"))]
    assert not actions & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"}


def test_ingest_function_writes_tasks_and_reads_uploads_but_manages_no_users(synth):
    # Given the ingest function and its spec
    spec = synth.envs["dev"].spec
    template, _, props = spec_functions(synth)["ingest"]
    role_ref = {"Ref": props["Role"]["Fn::GetAtt"][0]}
    policy = role_statements(template, role_ref)
    actions = _actions(template, role_ref)
    # Then it can write the tables it declares, including their GSIs
    writes = [s for s in policy if "dynamodb:PutItem" in actions_of(s)]
    targets = {flat(r) for s in writes for r in resources_of(s)}
    for table_id in spec.functions["ingest"].table_access:
        name = spec.tables[table_id].name
        assert any(t.endswith(f":table/{name}") for t in targets)
        assert any(t.endswith(f":table/{name}/index/*") for t in targets)
    # And read objects of the data bucket only
    reads = [s for s in policy if "s3:GetObject*" in actions_of(s)]
    assert reads
    assert all("serval-dev-data-" in flat(r) for s in reads for r in resources_of(s))
    # And send to its DLQ
    assert "sqs:SendMessage" in actions
    # But it has no Cognito and no EventBridge permissions
    assert not [a for a in actions if a.startswith(("cognito-idp:", "events:"))]


def test_api_function_manages_users_of_its_own_pool_only(synth):
    # Given the api function (manages_users in the spec)
    template, _, props = spec_functions(synth)["api"]
    role_ref = {"Ref": props["Role"]["Fn::GetAtt"][0]}
    cognito = [
        s
        for s in role_statements(template, role_ref)
        if any(a.startswith("cognito-idp:") for a in actions_of(s))
    ]
    # Then its Cognito actions are named one by one and target the user pool of the Auth stack
    assert len(cognito) == 1
    assert "cognito-idp:AdminAddUserToGroup" in actions_of(cognito[0])
    assert not [a for a in actions_of(cognito[0]) if "*" in a]
    assert "UserPool" in flat(cognito[0]["Resource"])
    # And the function is told which pool that is
    assert "USER_POOL_ID" in props["Environment"]["Variables"]


def test_functions_without_manages_users_get_no_pool_id(synth):
    # Given the functions that do not manage users
    spec = synth.envs["dev"].spec
    for function_id, (_, _, props) in spec_functions(synth).items():
        if not spec.functions[function_id].manages_users:
            # Then they are not given a user pool id
            assert "USER_POOL_ID" not in props["Environment"]["Variables"]
