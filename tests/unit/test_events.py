"""Domain events built from tasks-table stream changes (DynamoDB JSON images)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from serval.domain import events
from serval.domain.events import (
    CATALOGUE,
    EVENT_TYPES,
    PAYLOADS,
    STATUS_EVENTS,
    DomainEvent,
    from_change,
    schema_markdown,
    validate_payload,
)
from tests.conftest import ROOT

AT = "2024-05-01T12:00:00.000Z"


def image(**attrs: str | int) -> dict[str, Any]:
    return {k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in attrs.items()}


def task(status: str, **extra: str | int) -> dict[str, Any]:
    return image(entity="task", project_id="p_1", task_id="t_1", status=status, media_type="image", **extra)


def imp(status: str, **extra: str | int) -> dict[str, Any]:
    return image(entity="import", project_id="p_1", import_id="imp_1", status=status, **extra)


def job(status: str, kind: str = "audit_export", **counts: int) -> dict[str, Any]:
    return image(entity="job", project_id="p_1", job_id="j_1", kind=kind, status=status, **counts)


def member(role: str = "annotator") -> dict[str, Any]:
    return image(entity="member", project_id="p_1", user_id="u_2", role=role, added_by="u_1")


def webhook(status: str, scope: str = "project", **extra: str | int) -> dict[str, Any]:
    attrs: dict[str, str | int] = {
        "entity": "webhook",
        "webhook_id": "wh_1",
        "scope": scope,
        "url": "https://hooks.example.com/x",
        "status": status,
        "secret": "whsec_c2VjcmV0LXZhbHVlLW9uZS0xMjM0NTY3ODkw",
        "previous_secret": "whsec_cHJldmlvdXMtc2VjcmV0LTEyMzQ1Njc4OTA=",
        "description": "ours",
        **extra,
    }
    if scope == "project":
        attrs["project_id"] = "p_1"
    return image(**attrs)


def one(kind: str, old: dict[str, Any], new: dict[str, Any], event_id: str = "e") -> DomainEvent:
    """The single event a change announces."""
    [event] = from_change(event_id, kind, old, new, AT)
    return event


def test_task_insert_is_task_created() -> None:
    # Given a new task item from an import
    new = task("new", import_id="imp_1")

    # When the INSERT is turned into events
    event = one("INSERT", {}, new, "evt-1")

    # Then one event announces the created task with its media type and import, in the v1 envelope
    assert event.id == "evt-1"
    assert event.type == "task.created"
    assert event.version == "v1"
    assert event.project_id == "p_1"
    assert event.occurred_at == AT
    assert event.data == {"task_id": "t_1", "media_type": "image", "import_id": "imp_1"}


@pytest.mark.parametrize(
    ("before", "after", "type_"), [("new", "leased", "task.leased"), ("queued", "leased", "task.leased")]
)
def test_task_status_change_is_announced(before: str, after: str, type_: str) -> None:
    event = one("MODIFY", task(before), task(after))
    assert event.type == type_
    assert event.data == {"task_id": "t_1", "from": before, "to": after}


@pytest.mark.parametrize(("status", "types"), sorted(STATUS_EVENTS.items()))
def test_every_announced_status_has_its_events(status: str, types: tuple[str, ...]) -> None:
    assert [e.type for e in from_change("e", "MODIFY", task("queued"), task(status), AT)] == list(types)


def test_a_task_exported_is_announced_as_exported_then_completed_with_stable_ids() -> None:
    # Given the workflow's Export step moving an approved task to exported
    announced = from_change("shard-1:seq-7", "MODIFY", task("approved"), task("exported"), AT)

    # Then the change announces task.exported (the record's id) and task.completed (its .1)
    assert [(e.type, e.id) for e in announced] == [
        ("task.exported", "shard-1:seq-7"),
        ("task.completed", "shard-1:seq-7.1"),
    ]
    assert all(e.data == {"task_id": "t_1", "from": "approved", "to": "exported"} for e in announced)
    # And the same record gives the same events again
    assert from_change("shard-1:seq-7", "MODIFY", task("approved"), task("exported"), AT) == announced


@pytest.mark.parametrize("status", ["new", "queued", "in_review", "archived"])
def test_moves_into_unannounced_statuses_give_no_event(status: str) -> None:
    assert from_change("e", "MODIFY", task("leased"), task(status), AT) == []


def test_unchanged_status_gives_no_event() -> None:
    # Given a task whose priority changed but status did not (a re-export too)
    assert from_change("e", "MODIFY", task("leased", priority=1), task("leased", priority=5), AT) == []
    assert from_change("e", "MODIFY", task("exported"), task("exported"), AT) == []


def test_task_remove_is_task_deleted() -> None:
    # Given a REMOVE record (only the old image)
    event = one("REMOVE", task("queued"), {}, "evt-3")

    # Then the deleted task is announced
    assert event.type == "task.deleted"
    assert event.data == {"task_id": "t_1"}
    assert event.project_id == "p_1"


def test_import_completion_is_announced_with_counts() -> None:
    # Given an import moving from running to completed
    old = imp("running", tasks_created=10)
    new = imp("completed", tasks_created=40, duplicates=2, errors=1)

    # When the change is turned into events
    event = one("MODIFY", old, new)

    # Then it carries the final counts
    assert event.type == "import.completed"
    assert event.data == {
        "import_id": "imp_1",
        "status": "completed",
        "tasks_created": 40,
        "duplicates": 2,
        "errors": 1,
    }


def test_an_import_completed_with_errors_is_import_completed() -> None:
    event = one("MODIFY", imp("running"), imp("completed_with_errors"))
    assert event.type == "import.completed"
    assert event.data["status"] == "completed_with_errors"
    assert event.data["tasks_created"] == 0  # missing counts read as zero


def test_a_failed_import_is_import_failed_not_import_completed() -> None:
    # Given an import that failed partway, with its reason recorded
    new = imp("failed", tasks_created=5, errors=1, reason="the object changed")

    # When the change is turned into events
    event = one("MODIFY", imp("running", tasks_created=5), new)

    # Then only import.failed is announced, with the counts so far and the reason
    assert event.type == "import.failed"
    assert event.data == {
        "import_id": "imp_1",
        "status": "failed",
        "tasks_created": 5,
        "duplicates": 0,
        "errors": 1,
        "reason": "the object changed",
    }


def test_a_failed_import_without_a_recorded_reason_has_a_null_reason() -> None:
    assert one("MODIFY", imp("running"), imp("failed")).data["reason"] is None


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("MODIFY", imp("running", tasks_created=1), imp("running", tasks_created=2)),  # progress only
        ("MODIFY", imp("completed"), imp("completed", errors=1)),  # already finished
        ("MODIFY", imp("failed"), imp("failed", errors=2)),
        ("INSERT", {}, imp("running")),
        ("REMOVE", imp("completed"), {}),
    ],
)
def test_other_import_changes_give_no_event(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", kind, old, new, AT) == []


def test_project_insert_is_project_created() -> None:
    event = one("INSERT", {}, image(entity="project", project_id="p_1", name="Cats"))
    assert (event.type, event.data) == ("project.created", {"name": "Cats"})


def test_a_new_member_is_member_added_with_who_added_them() -> None:
    # Given a member item written by POST /projects/{id}/members
    event = one("INSERT", {}, member("reviewer"), "evt-m")

    # Then member.added names the user, the role and who added them
    assert (event.id, event.type, event.project_id) == ("evt-m", "member.added", "p_1")
    assert event.data == {"user_id": "u_2", "role": "reviewer", "added_by": "u_1"}


def test_a_removed_member_is_member_removed_without_added_by() -> None:
    event = one("REMOVE", member("annotator"), {})
    assert event.type == "member.removed"
    assert event.data == {"user_id": "u_2", "role": "annotator", "added_by": None}


def test_a_member_role_change_gives_no_event() -> None:
    assert from_change("e", "MODIFY", member("annotator"), member("reviewer"), AT) == []


def test_a_disabled_project_webhook_is_webhook_disabled() -> None:
    # Given the dispatcher disabling a project's subscription after repeated failures
    old = webhook("active", consecutive_failures=9)
    new = webhook("disabled", consecutive_failures=10, disabled_reason="10 failures in a row")

    # When the change is turned into events
    event = one("MODIFY", old, new, "evt-w")

    # Then webhook.disabled says which, where, why and after how many failures
    assert (event.id, event.type, event.project_id) == ("evt-w", "webhook.disabled", "p_1")
    assert event.data == {
        "webhook_id": "wh_1",
        "scope": "project",
        "url": "https://hooks.example.com/x",
        "reason": "10 failures in a row",
        "consecutive_failures": 10,
    }


def test_a_disabled_org_webhook_has_no_project() -> None:
    # Given an organisation subscription (no project_id attribute) disabled by a 410
    event = one(
        "MODIFY", webhook("active", scope="org"), webhook("disabled", scope="org", disabled_reason="410")
    )

    # Then its envelope's project_id is None
    assert event.type == "webhook.disabled"
    assert event.project_id is None
    assert event.data["scope"] == "org"
    assert json.loads(event.model_dump_json())["project_id"] is None


def test_a_webhook_event_never_carries_the_items_secrets() -> None:
    # Given a webhook item holding its current and previous secrets
    old, new = webhook("paused"), webhook("disabled", disabled_reason="gone")
    secrets = [new["secret"]["S"], new["previous_secret"]["S"]]

    # When its disabling is turned into an event
    body = one("MODIFY", old, new).model_dump_json()

    # Then neither secret, nor any other attribute outside the payload, is in the event
    assert all(secret not in body for secret in secrets)
    assert "secret" not in body
    assert "ours" not in body  # the description


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("INSERT", {}, webhook("active")),
        ("INSERT", {}, webhook("disabled")),  # only a MODIFY disables
        ("MODIFY", webhook("active"), webhook("paused")),
        ("MODIFY", webhook("disabled"), webhook("active")),  # resumed
        ("MODIFY", webhook("disabled"), webhook("disabled", consecutive_failures=3)),
        ("REMOVE", webhook("disabled"), {}),
    ],
)
def test_other_webhook_changes_give_no_event(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", kind, old, new, AT) == []


def test_a_webhook_test_event_is_built_for_its_subscription() -> None:
    # When the subscriptions API builds a test event for an organisation subscription
    event = events.test_event("wh_1", None, AT, "evt_test_1")

    # Then it is a v1 webhook.test envelope with the fixed message
    assert event.model_dump(mode="json") == {
        "id": "evt_test_1",
        "type": "webhook.test",
        "version": "v1",
        "occurred_at": AT,
        "project_id": None,
        "data": {"webhook_id": "wh_1", "message": "This is a test event from Serval."},
    }
    assert events.test_event("wh_1", "p_1", AT, "evt_test_2").project_id == "p_1"


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
        ("INSERT", {}, image(entity="member", user_id="u_1", role="viewer")),
        ("INSERT", {}, {}),
    ],
)
def test_non_business_items_give_no_event(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    assert from_change("e", kind, old, new, AT) == []


def test_event_id_is_the_change_id_so_repeats_are_stable() -> None:
    # Given the same stream record seen twice
    first = one("MODIFY", task("queued"), task("leased"), "shard-1:seq-42")
    second = one("MODIFY", task("queued"), task("leased"), "shard-1:seq-42")

    # Then both events carry the record's id and are equal
    assert first.id == "shard-1:seq-42"
    assert first == second


@pytest.mark.parametrize("final", ["succeeded", "failed"])
def test_a_finished_audit_export_job_is_announced_with_its_counts(final: str) -> None:
    event = one("MODIFY", job("running"), job(final, done=7, failed=1))
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
    assert from_change("e", "MODIFY", old, new, AT) == []


# ---- every event against its documented schema ---------------------------------------------

EXAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("INSERT", {}, task("new", import_id="imp_1")),
    ("REMOVE", task("queued"), {}),
    *[("MODIFY", task("queued"), task(status)) for status in STATUS_EVENTS],
    ("MODIFY", imp("running"), imp("completed", tasks_created=3, duplicates=1, errors=0)),
    ("MODIFY", imp("running"), imp("failed", tasks_created=3, errors=1, reason="gone")),
    ("INSERT", {}, image(entity="project", project_id="p_1", name="Shapes")),
    *[
        ("MODIFY", job("running", kind=k), job("succeeded", kind=k, done=2))
        for k in ("audit_export", "dataset_export", "bulk")
    ],
    ("INSERT", {}, member()),
    ("REMOVE", member(), {}),
    ("MODIFY", webhook("active"), webhook("disabled", disabled_reason="410", consecutive_failures=1)),
    ("MODIFY", webhook("active", scope="org"), webhook("disabled", scope="org")),
]


@pytest.mark.parametrize(("kind", "old", "new"), EXAMPLES)
def test_every_event_matches_its_documented_payload_schema(
    kind: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    announced = from_change("e", kind, old, new, AT)
    assert announced
    for event in announced:
        validate_payload(event)
        assert event.occurred_at == AT


def test_every_documented_event_type_is_produced() -> None:
    produced = {e.type for k, o, n in EXAMPLES for e in from_change("e", k, o, n, AT)}
    produced.add(events.test_event("wh_1", None, AT, "t").type)
    assert produced == set(PAYLOADS) == EVENT_TYPES == set(CATALOGUE)


def test_every_payload_model_forbids_extra_fields() -> None:
    for event_type, model in PAYLOADS.items():
        assert model.model_config.get("extra") == "forbid", event_type


def test_an_event_that_does_not_match_its_schema_is_never_built() -> None:
    # Given a webhook item with a scope the schema does not know
    old, new = webhook("active", scope="team"), webhook("disabled", scope="team")
    new["project_id"] = {"S": "p_1"}

    # Then turning its disabling into an event raises instead of emitting it
    with pytest.raises(ValidationError):
        from_change("e", "MODIFY", old, new, AT)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_catalogue_example_validates_against_its_own_model(event_type: str) -> None:
    spec = CATALOGUE[event_type]
    spec.model.model_validate(spec.example)
    envelope = events.example_event(event_type)
    assert DomainEvent.model_validate(envelope.model_dump(mode="json")) == envelope
    validate_payload(envelope)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_catalogue_entry_says_when_and_why(event_type: str) -> None:
    spec = CATALOGUE[event_type]
    assert spec.when.strip() and "\n" not in spec.when
    assert spec.caused_by.strip()


def test_docs_events_md_is_current() -> None:
    assert (ROOT / "docs" / "events.md").read_text(encoding="utf-8") == schema_markdown()


def test_docs_events_md_documents_every_event_type() -> None:
    doc = schema_markdown()
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature", "occurred_at"):
        assert header in doc
    for event_type in CATALOGUE:
        assert f"## `{event_type}`" in doc


def test_a_disabled_webhook_event_names_its_endpoint_without_the_query() -> None:
    # Given a subscription whose URL carries the consumer's own token in its query
    old = webhook("active")
    new = webhook("disabled", disabled_reason="410")
    new["url"] = {"S": "https://hooks.example.com:8443/in/serval?token=consumer-secret"}

    # Then the event other subscribers receive names the endpoint, not the token
    event = one("MODIFY", old, new)
    assert event.data["url"] == "https://hooks.example.com:8443/in/serval"
    assert "consumer-secret" not in event.model_dump_json()


def test_a_bus_pattern_matches_the_events_as_published_by_source_and_type() -> None:
    # Given the source and detail-type the bus adapter publishes each event with
    # When a pattern is built for some event types, or for all
    some, every = (
        json.loads(events.bus_pattern("task.created", "task.deleted")),
        json.loads(events.bus_pattern()),
    )
    # Then it names the source and those types, or the source alone
    assert some == {"source": [events.SOURCE], "detail-type": ["task.created", "task.deleted"]}
    assert every == {"source": [events.SOURCE]}


def test_a_bus_pattern_refuses_a_type_the_catalogue_does_not_have() -> None:
    # Given an event type that no change announces
    # When a pattern is built for it
    # Then it is refused, rather than building a rule that never matches
    with pytest.raises(ValueError, match=r"task\.craeted"):
        events.bus_pattern("task.created", "task.craeted")
