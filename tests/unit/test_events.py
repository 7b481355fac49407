"""Domain events built from tasks-table stream changes (DynamoDB JSON images)."""

from __future__ import annotations

from typing import Any

import pytest

from serval.domain.events import PAYLOADS, STATUS_EVENTS, from_change, schema_markdown, validate_payload
from tests.conftest import ROOT

AT = "2024-05-01T12:00:00.000Z"


def image(**attrs: str | int) -> dict[str, Any]:
    return {k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in attrs.items()}


def task(status: str, **extra: str | int) -> dict[str, Any]:
    return image(entity="task", project_id="p_1", task_id="t_1", status=status, media_type="image", **extra)


def imp(status: str, **counts: int) -> dict[str, Any]:
    return image(entity="import", project_id="p_1", import_id="imp_1", status=status, **counts)


def test_task_insert_is_task_created() -> None:
    # Given a new task item from an import
    new = task("new", import_id="imp_1")

    # When the INSERT is turned into an event
    event = from_change("evt-1", "INSERT", {}, new, AT)

    # Then it announces the created task with its media type and import
    assert event is not None
    assert event.type == "task.created"
    assert event.project_id == "p_1"
    assert event.occurred_at == AT
    assert event.data == {"task_id": "t_1", "media_type": "image", "import_id": "imp_1"}


@pytest.mark.parametrize(
    ("before", "after", "type_"), [("new", "leased", "task.leased"), ("queued", "leased", "task.leased")]
)
def test_task_status_change_is_announced(before: str, after: str, type_: str) -> None:
    event = from_change("evt-2", "MODIFY", task(before), task(after), AT)
    assert event is not None
    assert event.type == type_
    assert event.data == {"task_id": "t_1", "from": before, "to": after}


@pytest.mark.parametrize(("status", "type_"), sorted(STATUS_EVENTS.items()))
def test_every_announced_status_has_its_event(status: str, type_: str) -> None:
    event = from_change("e", "MODIFY", task("queued"), task(status), AT)
    assert event is not None
    assert event.type == type_


@pytest.mark.parametrize("status", ["new", "queued", "in_review", "archived"])
def test_moves_into_unannounced_statuses_give_no_event(status: str) -> None:
    assert from_change("e", "MODIFY", task("leased"), task(status), AT) is None


def test_unchanged_status_gives_no_event() -> None:
    # Given a task whose priority changed but status did not
    assert from_change("e", "MODIFY", task("leased", priority=1), task("leased", priority=5), AT) is None


def test_task_remove_is_task_deleted() -> None:
    # Given a REMOVE record (only the old image)
    event = from_change("evt-3", "REMOVE", task("queued"), {}, AT)

    # Then the deleted task is announced
    assert event is not None
    assert event.type == "task.deleted"
    assert event.data == {"task_id": "t_1"}
    assert event.project_id == "p_1"


def test_import_completion_is_announced_with_counts() -> None:
    # Given an import moving from running to completed
    old = imp("running", tasks_created=10)
    new = imp("completed", tasks_created=40, duplicates=2, errors=1)

    # When the change is turned into an event
    event = from_change("evt-4", "MODIFY", old, new, AT)

    # Then it carries the final counts
    assert event is not None
    assert event.type == "import.completed"
    assert event.data == {
        "import_id": "imp_1",
        "status": "completed",
        "tasks_created": 40,
        "duplicates": 2,
        "errors": 1,
    }


@pytest.mark.parametrize("final", ["completed_with_errors", "failed"])
def test_every_finished_import_status_is_announced(final: str) -> None:
    event = from_change("e", "MODIFY", imp("running"), imp(final), AT)
    assert event is not None
    assert event.type == "import.completed"
    assert event.data["status"] == final
    assert event.data["tasks_created"] == 0  # missing counts read as zero


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("MODIFY", imp("running", tasks_created=1), imp("running", tasks_created=2)),  # progress only
        ("MODIFY", imp("completed"), imp("completed", errors=1)),  # already finished
        ("INSERT", {}, imp("running")),
        ("REMOVE", imp("completed"), {}),
    ],
)
def test_other_import_changes_give_no_event(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", kind, old, new, AT) is None


def test_project_insert_is_project_created() -> None:
    event = from_change("e", "INSERT", {}, image(entity="project", project_id="p_1", name="Cats"), AT)
    assert event is not None
    assert (event.type, event.data) == ("project.created", {"name": "Cats"})


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("INSERT", {}, image(entity="counter", project_id="p_1", n_new=1)),
        (
            "MODIFY",
            image(entity="counter", project_id="p_1", n_new=1),
            image(entity="counter", project_id="p_1", n_new=2),
        ),
        ("INSERT", {}, image(entity="tag", project_id="p_1", task_id="t_1")),
        ("REMOVE", image(entity="tag", project_id="p_1", task_id="t_1"), {}),
        ("INSERT", {}, image(entity="annotation", project_id="p_1", task_id="t_1")),
        (
            "MODIFY",
            image(entity="project", project_id="p_1", name="a"),
            image(entity="project", project_id="p_1", name="b"),
        ),
        ("INSERT", {}, image(entity="task", task_id="t_1")),  # no project: nothing to route by
        ("INSERT", {}, {}),
    ],
)
def test_non_business_items_give_no_event(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", kind, old, new, AT) is None


def test_event_id_is_the_change_id_so_repeats_are_stable() -> None:
    # Given the same stream record seen twice
    first = from_change("shard-1:seq-42", "MODIFY", task("queued"), task("leased"), AT)
    second = from_change("shard-1:seq-42", "MODIFY", task("queued"), task("leased"), AT)

    # Then both events carry the record's id and are equal
    assert first is not None
    assert first.id == "shard-1:seq-42"
    assert first == second


def job(status: str, kind: str = "audit_export", **counts: int) -> dict[str, Any]:
    return image(entity="job", project_id="p_1", job_id="j_1", kind=kind, status=status, **counts)


@pytest.mark.parametrize("final", ["succeeded", "failed"])
def test_a_finished_audit_export_job_is_announced_with_its_counts(final: str) -> None:
    event = from_change("e", "MODIFY", job("running"), job(final, done=7, failed=1), AT)
    assert event is not None
    assert event.type == "audit_export.completed"
    assert event.data == {"job_id": "j_1", "kind": "audit_export", "status": final, "done": 7, "failed": 1}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (job("queued"), job("running")),  # not finished
        (job("succeeded"), job("succeeded", done=3)),  # no status change
        (job("running", kind="unknown"), job("succeeded", kind="unknown")),  # a kind with no event
    ],
)
def test_other_job_changes_give_no_event(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", "MODIFY", old, new, AT) is None


EXAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("INSERT", {}, task("new", import_id="imp_1")),
    ("REMOVE", task("queued"), {}),
    *[("MODIFY", task("queued"), task(status)) for status in STATUS_EVENTS],
    ("MODIFY", imp("running"), imp("completed", tasks_created=3, duplicates=1, errors=0)),
    ("INSERT", {}, image(entity="project", project_id="p_1", name="Shapes")),
    *[
        ("MODIFY", job("running", kind=k), job("succeeded", kind=k, done=2))
        for k in ("audit_export", "dataset_export", "bulk")
    ],
]


@pytest.mark.parametrize(("kind", "old", "new"), EXAMPLES)
def test_every_event_matches_its_documented_payload_schema(
    kind: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    event = from_change("e", kind, old, new, AT)
    assert event is not None
    validate_payload(event)


def test_every_documented_event_type_is_produced_by_an_example() -> None:
    produced = {e.type for k, o, n in EXAMPLES if (e := from_change("e", k, o, n, AT)) is not None}
    assert produced == set(PAYLOADS)


def test_docs_events_md_is_current() -> None:
    assert (ROOT / "docs" / "events.md").read_text(encoding="utf-8") == schema_markdown()
