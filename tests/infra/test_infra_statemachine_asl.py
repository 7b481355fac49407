"""The ASL files of the spec's state machines, checked as data (no synthesis): what moto and AWS both run."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from infra.config import load
from infra.spec import FUNCTIONS_SRC, build
from serval.logic.workflow import TASK_DELETED

_SPEC = build(load("dev"), "123456789012", "us-east-1")
MACHINES = sorted(_SPEC.state_machines)
# The catch target of every other Task: it may retry, but there is nowhere left to go on failure.
CATCH_TARGETS = {"RecordFailure"}
ERROR_NAME = re.compile(r"^(States|Lambda|Serval)\.\w+$")


def _raised_errors(machine_id: str) -> set[str]:
    """The exception classes the invoked functions' handler modules define: Lambda reports a raised
    one by its class name (``errorType``), which is the name a Retry or Catch matches."""
    names: set[str] = set()
    for function_id in set(_SPEC.state_machines[machine_id].substitutions.values()):
        module = FUNCTIONS_SRC / (_SPEC.functions[function_id].module.replace(".", "/") + ".py")
        names |= {
            node.name
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, ast.ClassDef)
            and any(isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")) for b in node.bases)
        }
    return names


def _definition(machine_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_SPEC.state_machines[machine_id].definition_file.read_text())
    return document


def _next_targets(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def _walk(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@pytest.mark.parametrize("machine_id", MACHINES)
def test_the_definition_is_jsonpath_only(machine_id):
    # Given the ASL file (moto stubs JSONata out)
    definition = _definition(machine_id)
    # Then it is JSONPath at the top and in no state switches to JSONata
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    for state in definition["States"].values():
        assert state.get("QueryLanguage", "JSONPath") == "JSONPath"
        assert "Arguments" not in state and "Output" not in state and "Assign" not in state
    assert not [s for s in _walk(definition) if isinstance(s, str) and s.startswith("{%")]


@pytest.mark.parametrize("machine_id", MACHINES)
def test_every_task_retries_and_catches_except_the_catch_target_which_only_retries(machine_id):
    for name, state in _definition(machine_id)["States"].items():
        if state["Type"] != "Task":
            continue
        # Given a Task state, Then it retries transient failures
        assert state.get("Retry"), name
        # And a deleted task ends the execution in Deleted, from every Task state
        catchers = [(c["ErrorEquals"], c["Next"]) for c in state.get("Catch", [])]
        assert catchers[0] == ([TASK_DELETED], "Deleted"), name
        # And it catches every other failure, unless it is the catch target itself
        if name in CATCH_TARGETS:
            assert catchers == [([TASK_DELETED], "Deleted")], name
        else:
            assert catchers[1:] == [(["States.ALL"], "RecordFailure")], name


def test_a_deleted_task_ends_in_a_succeed_state_named_by_the_handlers_error():
    # Given the error the workflow handler raises for a task that is gone
    from workflow.handler import TaskDeleted

    # Then it is the name the state machine catches, and Deleted ends the execution quietly
    assert TaskDeleted.__name__ == TASK_DELETED
    assert _definition("task")["States"]["Deleted"]["Type"] == "Succeed"


@pytest.mark.parametrize("machine_id", MACHINES)
def test_every_retried_or_caught_error_is_a_known_error_name(machine_id):
    raised = _raised_errors(machine_id)
    for name, state in _definition(machine_id)["States"].items():
        for handler in [*state.get("Retry", []), *state.get("Catch", [])]:
            # Given each error a Retry or Catch names
            # Then it is a States.* / Lambda.* / Serval.* name, or an exception the invoked function raises
            for error in handler["ErrorEquals"]:
                assert ERROR_NAME.match(error) or error in raised, (name, error)


@pytest.mark.parametrize("machine_id", MACHINES)
def test_every_next_target_exists_and_every_state_is_reachable(machine_id):
    definition = _definition(machine_id)
    states = definition["States"]
    # Given every transition of the machine
    for name, state in states.items():
        for target in _next_targets(state):
            # Then it leads to a state of the machine
            assert target in states, (name, target)
        # And only terminal states have no way on
        if state["Type"] not in ("Succeed", "Fail", "Choice") and not state.get("End"):
            assert "Next" in state, name
    # And from StartAt every state is reachable
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _next_targets(states[name])
    assert seen == set(states)


@pytest.mark.parametrize("machine_id", MACHINES)
def test_every_placeholder_has_a_substitution_and_names_a_spec_function(machine_id):
    # Given the placeholders of the ASL file and the spec's substitutions
    machine = _SPEC.state_machines[machine_id]
    placeholders = set(re.findall(r"\$\{(\w+)\}", machine.definition_file.read_text()))
    # Then both sides agree, and each substitution names a spec function
    assert placeholders == set(machine.substitutions)
    assert set(machine.substitutions.values()) <= set(_SPEC.functions)


def _choose(state: dict[str, Any], decision: str) -> str:
    """Where a Choice on ``$.review.decision`` (StringEquals rules only) goes for ``decision``."""
    for rule in state["Choices"]:
        assert rule["Variable"] == "$.review.decision" and set(rule) == {"Variable", "StringEquals", "Next"}
        if rule["StringEquals"] == decision:
            return str(rule["Next"])
    return str(state["Default"])


def test_review_decisions_route_to_export_to_counted_rework_or_straight_back_to_label():
    # Given the task machine's Review step and the choice that follows it
    states = _definition("task")["States"]
    choice = states[states["Review"]["Next"]]
    # Then approved exports, rejected counts a rework round before labelling again
    assert _choose(choice, "approved") == "ExportRecord"
    assert _choose(choice, "rejected") == "CountRework"
    assert states["CountRework"]["Next"] == "ReworkChoice" and states["ReworkChoice"]["Default"] == "Label"
    # And requeue (a manager's bulk requeue) goes back to Label without counting a round
    assert _choose(choice, "requeue") == "Label"
    # And anything else is recorded as a failure
    assert _choose(choice, "maybe") == "RecordFailure"


_MISSING = object()


def _value(document: dict[str, Any], path: str) -> Any:
    """A ``$.a.b`` JSONPath's value in ``document`` (_MISSING when absent)."""
    value: Any = document
    for part in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _holds(rule: dict[str, Any], document: dict[str, Any]) -> bool:
    """A Choice rule of the forms the Entry choice uses: And, IsPresent, StringEquals. As in
    AWS, And stops at its first false rule (a comparison on an absent path is never reached)."""
    if "And" in rule:
        return all(_holds(r, document) for r in rule["And"])
    value = _value(document, rule["Variable"])
    if "IsPresent" in rule:
        return (value is not _MISSING) is rule["IsPresent"]
    assert set(rule) == {"Variable", "StringEquals"}, rule
    assert value is not _MISSING, f"{rule['Variable']} compared unguarded"
    return bool(value == rule["StringEquals"])


def _enter(document: dict[str, Any]) -> str:
    """Where the task machine's first state sends an execution with input ``document``."""
    definition = _definition("task")
    entry = definition["States"][definition["StartAt"]]
    assert entry["Type"] == "Choice"
    return next((c["Next"] for c in entry["Choices"] if _holds(c, document)), entry["Default"])


def _project() -> Any:
    from serval.domain.models import Project, ProjectSettings

    return Project.model_construct(project_id="p_1", settings=ProjectSettings(max_rework_rounds=2))


def test_a_new_execution_starts_at_the_beginning_and_a_re_created_one_at_its_wait():
    from serval.domain.lifecycle import WaitStep
    from serval.logic.workflow import execution_input, resume_input

    # Given the input of a new execution (no step to resume at), or none at all (a manual start)
    # Then the machine starts at the beginning, comparing no absent field
    assert _enter(execution_input(_project(), "t_1")) == "AutoLabelPassThrough"
    assert _enter({"project_id": "p_1", "task_id": "t_1"}) == "AutoLabelPassThrough"
    # And an unknown step to resume at also starts at the beginning
    assert _enter({"resume_at": "Export"}) == "AutoLabelPassThrough"
    # And a re-created execution goes straight into the wait it resumes, a waitForTaskToken state
    states = _definition("task")["States"]
    for step in WaitStep:
        document = resume_input(_project(), "t_1", step, rework=1)
        assert _enter(document) == step.value
        assert states[step.value]["Resource"].endswith(".waitForTaskToken")
        # which finds every input field it reads, with the rework rounds carried over
        payload = states[step.value]["Parameters"]["Payload"]
        for name, path in payload.items():
            if name.endswith(".$") and path.startswith("$."):
                assert _value(document, path) is not _MISSING, (step, path)
        assert _value(document, "$.rework.n") == 1 and _value(document, "$.max_rework") == 2


def test_the_waits_record_the_execution_that_issued_their_token():
    # Given the Label and Review waits, Then each hands its step the token and the execution's
    # name (which a resume request names), from the context object: never an absent input field
    states = _definition("task")["States"]
    for step in ("Label", "Review"):
        payload = states[step]["Parameters"]["Payload"]
        assert payload["token.$"] == "$$.Task.Token"
        assert payload["execution.$"] == "$$.Execution.Name"
