"""Bulk requests: validation of operations and selections, and the params a job keeps."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from serval.domain.bulk import (
    INLINE_TASK_IDS,
    MAX_TASK_IDS,
    BulkCreate,
    BulkFailure,
    BulkOperation,
    describe_failures,
    job_params,
    store_ids_in_s3,
)

IDS = {"task_ids": ["t1", "t2"]}


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "tag", "tags": ["a"], "selection": IDS},
        {"operation": "untag", "tags": ["a", "b"], "selection": IDS},
        {"operation": "set_priority", "priority": -5, "selection": IDS},
        {"operation": "archive", "selection": {"filter": {"status": "new"}}},
        {"operation": "delete", "selection": {"filter": {}}},
        {"operation": "assign", "user_id": "u-1", "selection": IDS},
        {"operation": "unassign", "selection": {"filter": {"status": "queued"}}},
        {"operation": "requeue", "selection": {"filter": {"status": "leased"}}},
        {"operation": "accept_predictions", "selection": IDS},
        {
            "operation": "delete",
            "selection": {
                "filter": {"created_from": "2024-01-01T00:00:00Z", "created_to": "2024-02-01T00:00:00+01:00"}
            },
        },
    ],
)
def test_valid_requests(body: dict[str, Any]) -> None:
    assert BulkCreate.model_validate(body).operation == BulkOperation(body["operation"])


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "tag", "selection": IDS},  # tags needed
        {"operation": "untag", "tags": [], "selection": IDS},
        {"operation": "tag", "tags": ["has space#hash"], "selection": IDS},
        {"operation": "tag", "tags": ["a"], "priority": 1, "selection": IDS},
        {"operation": "set_priority", "selection": IDS},  # priority needed
        {"operation": "set_priority", "priority": 10**9, "selection": IDS},
        {"operation": "archive", "tags": ["a"], "selection": IDS},
        {"operation": "delete", "priority": 1, "selection": IDS},
        {"operation": "delete", "selection": {}},  # neither
        {"operation": "delete", "selection": {**IDS, "filter": {}}},  # both
        {"operation": "delete", "selection": {"task_ids": []}},
        {"operation": "delete", "selection": {"task_ids": [""]}},
        {"operation": "delete", "selection": {"task_ids": ["x" * 65]}},
        {"operation": "delete", "selection": {"filter": {"status": "nope"}}},
        {"operation": "delete", "selection": {"filter": {"created_from": "2024-01-01T00:00:00"}}},  # naive
        {
            "operation": "delete",
            "selection": {
                "filter": {"created_from": "2024-02-01T00:00:00Z", "created_to": "2024-01-01T00:00:00Z"}
            },
        },
        {"operation": "explode", "selection": IDS},
        {"operation": "assign", "selection": IDS},  # user_id needed
        {"operation": "assign", "user_id": "", "selection": IDS},
        {"operation": "assign", "user_id": None, "selection": IDS},
        {"operation": "unassign", "user_id": "u-1", "selection": IDS},
        {"operation": "requeue", "user_id": "u-1", "selection": IDS},
        {"operation": "accept_predictions", "priority": 1, "selection": IDS},
        {"operation": "tag", "tags": ["a"], "user_id": "u-1", "selection": IDS},
        {"operation": "delete", "selection": IDS, "extra": 1},
    ],
)
def test_invalid_requests(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BulkCreate.model_validate(body)


def test_at_most_100k_ids() -> None:
    ids = [f"t{i}" for i in range(MAX_TASK_IDS + 1)]
    with pytest.raises(ValidationError):
        BulkCreate.model_validate({"operation": "delete", "selection": {"task_ids": ids}})
    ok = BulkCreate.model_validate({"operation": "delete", "selection": {"task_ids": ids[:-1]}})
    assert store_ids_in_s3(ok)


def test_long_id_lists_are_kept_by_key_short_ones_inline() -> None:
    short = BulkCreate.model_validate(
        {"operation": "delete", "selection": {"task_ids": ["a"] * INLINE_TASK_IDS}}
    )
    assert not store_ids_in_s3(short)
    assert job_params(short, None).selection.task_ids == ["a"] * INLINE_TASK_IDS
    long = BulkCreate.model_validate(
        {"operation": "delete", "selection": {"task_ids": ["a"] * (INLINE_TASK_IDS + 1)}}
    )
    params = job_params(long, "bulk/p/j.ids.json")
    assert params.selection.task_ids is None
    assert (params.selection.task_ids_key, params.selection.task_count) == (
        "bulk/p/j.ids.json",
        INLINE_TASK_IDS + 1,
    )


def test_fingerprint_tells_requests_apart() -> None:
    a = BulkCreate.model_validate({"operation": "tag", "tags": ["a"], "selection": IDS})
    b = BulkCreate.model_validate({"operation": "tag", "tags": ["b"], "selection": IDS})
    assert a.fingerprint() == BulkCreate.model_validate(a.model_dump()).fingerprint()
    assert a.fingerprint() != b.fingerprint()


def test_describe_failures() -> None:
    assert describe_failures(0, []) is None
    text = describe_failures(3, [BulkFailure(task_id="t9", reason="no such task in this project")])
    assert text is not None and text.startswith("3 task(s) failed") and "t9" in text


def test_the_assignee_is_kept_in_the_jobs_params() -> None:
    request = BulkCreate.model_validate({"operation": "assign", "user_id": "u-1", "selection": IDS})
    params = job_params(request, None)
    assert (params.operation, params.user_id, params.selection.task_ids) == (
        BulkOperation.ASSIGN,
        "u-1",
        ["t1", "t2"],
    )
