"""API input models: tasks, task patches, projects, and the timestamp format."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from serval.domain.media import MediaType
from serval.domain.models import (
    MAX_METADATA_BYTES,
    MAX_TAGS,
    ProjectCreate,
    S3Ref,
    Task,
    TaskCreate,
    TaskPatch,
    TextRef,
    utcnow,
)

DATA = {"text": {"kind": "text", "text": "hello"}}


def task(**fields: Any) -> TaskCreate:
    return TaskCreate.model_validate({"data": DATA} | fields)


# --- TaskCreate ------------------------------------------------------------------------------


def test_task_create_dedupes_tags_keeping_first_order() -> None:
    # Given repeated tags / When a task is created / Then each tag appears once, in first-seen order
    assert task(tags=["b", "a", "b", "c", "a"]).tags == ["b", "a", "c"]


def test_task_create_accepts_the_maximum_number_of_tags() -> None:
    assert len(task(tags=[f"t{i}" for i in range(MAX_TAGS)]).tags) == MAX_TAGS


def test_task_create_rejects_too_many_tags() -> None:
    with pytest.raises(ValidationError):
        task(tags=[f"t{i}" for i in range(MAX_TAGS + 1)])


@pytest.mark.parametrize("tag", ["a#b", "#a", "", " leading-space", "\tx", "x" * 65])
def test_task_create_rejects_malformed_tags(tag: str) -> None:
    # Given a tag with '#' (the key separator), leading whitespace, empty or too long / Then it is refused
    with pytest.raises(ValidationError):
        task(tags=[tag])


@pytest.mark.parametrize("tag", ["cat", "needs review", "batch-7", "ünïcode", "x" * 64])
def test_task_create_accepts_ordinary_tags(tag: str) -> None:
    assert task(tags=[tag]).tags == [tag]


def test_task_create_accepts_metadata_up_to_the_limit() -> None:
    # Given metadata whose JSON is exactly the limit
    overhead = len('{"k":""}')  # stored compact
    meta = {"k": "x" * (MAX_METADATA_BYTES - overhead)}

    # Then it is accepted
    assert task(metadata=meta).metadata == meta


def test_task_create_rejects_metadata_over_the_limit() -> None:
    overhead = len('{"k":""}')  # stored compact
    with pytest.raises(ValidationError, match="metadata is larger"):
        task(metadata={"k": "x" * (MAX_METADATA_BYTES - overhead + 1)})


@pytest.mark.parametrize(
    "bad",
    [
        {"data": {}},  # at least one data entry
        {"data": {"bad key": {"kind": "text", "text": "x"}}},
        {"data": {"image": {"kind": "s3", "bucket": "b", "key": "k"}}},  # bucket too short
        {"data": {"image": {"kind": "ftp", "url": "x"}}},
        {"data": DATA, "priority": 1_000_001},
        {"data": DATA, "external_id": ""},
        {"data": DATA, "surprise": 1},
        {"data": {"text": {"kind": "text", "text": "x" * 100_001}}},
    ],
)
def test_task_create_rejects_malformed_input(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TaskCreate.model_validate(bad)


def test_task_create_parses_data_refs_by_kind() -> None:
    # Given one S3 and one inline reference / Then each becomes its model
    created = TaskCreate.model_validate(
        {
            "data": {
                "image": {"kind": "s3", "bucket": "bucket", "key": "a.png"},
                "caption": {"kind": "text", "text": "hi"},
            }
        }
    )
    assert isinstance(created.data["image"], S3Ref)
    assert isinstance(created.data["caption"], TextRef)


# --- TaskPatch -------------------------------------------------------------------------------


def test_task_patch_requires_at_least_one_field() -> None:
    with pytest.raises(ValidationError, match="nothing to change"):
        TaskPatch.model_validate({})


@pytest.mark.parametrize(
    "patch", [{"tags": []}, {"priority": 0}, {"metadata": {}}, {"tags": ["a"], "priority": 3}]
)
def test_task_patch_accepts_any_one_field_even_empty(patch: dict[str, Any]) -> None:
    # Given a patch that sets (possibly clears) one field / Then it is valid
    TaskPatch.model_validate(patch)


def test_task_patch_checks_tags_and_metadata_like_create() -> None:
    with pytest.raises(ValidationError):
        TaskPatch.model_validate({"tags": ["a#b"]})
    with pytest.raises(ValidationError):
        TaskPatch.model_validate({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]})
    with pytest.raises(ValidationError):
        TaskPatch.model_validate({"metadata": {"k": "x" * MAX_METADATA_BYTES}})


# --- ProjectCreate ---------------------------------------------------------------------------

BBOX_CONFIG = {"controls": [{"name": "boxes", "type": "bbox", "classes": [{"name": "car"}]}]}


def test_project_create_accepts_a_config_that_fits_its_media() -> None:
    project = ProjectCreate.model_validate(
        {"name": "p", "media_types": ["image"], "label_config": BBOX_CONFIG}
    )
    assert project.media_types == [MediaType.IMAGE]
    assert project.settings.overlap == 1  # defaults applied


def test_project_create_rejects_a_config_that_does_not_fit_its_media() -> None:
    # Given a bbox config for an audio project / Then the project is refused, naming the control
    with pytest.raises(ValidationError, match="boxes"):
        ProjectCreate.model_validate({"name": "p", "media_types": ["audio"], "label_config": BBOX_CONFIG})


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "", "media_types": ["image"], "label_config": BBOX_CONFIG},
        {"name": "p", "media_types": [], "label_config": BBOX_CONFIG},
        {"name": "p", "media_types": ["hologram"], "label_config": BBOX_CONFIG},
        {"name": "p", "media_types": ["image"], "label_config": BBOX_CONFIG, "settings": {"overlap": 0}},
        {"name": "p", "media_types": ["image"], "label_config": BBOX_CONFIG, "settings": {"overlap": 11}},
        {
            "name": "p",
            "media_types": ["image"],
            "label_config": BBOX_CONFIG,
            "settings": {"auto_label_threshold": 1.5},
        },
    ],
)
def test_project_create_rejects_malformed_input(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProjectCreate.model_validate(bad)


# --- Task ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"text": {"kind": "text", "text": "héllo"}}, 5),  # code points, not bytes
        ({"image": {"kind": "s3", "bucket": "bucket", "key": "a.png"}}, None),
        ({"a": {"kind": "text", "text": "x"}, "b": {"kind": "text", "text": "yy"}}, None),  # ambiguous
        (
            {
                "image": {"kind": "s3", "bucket": "bucket", "key": "a.png"},
                "caption": {"kind": "text", "text": "abc"},
            },
            3,
        ),
    ],
)
def test_task_primary_text_length(data: dict[str, Any], expected: int | None) -> None:
    t = Task.model_validate(
        {
            "task_id": "t",
            "project_id": "p",
            "data": data,
            "media_type": "text",
            "created_at": "x",
            "updated_at": "x",
        }
    )
    assert t.primary_text_length() == expected


# --- utcnow ----------------------------------------------------------------------------------


def test_utcnow_is_fixed_width_iso_utc_with_milliseconds() -> None:
    stamp = utcnow()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_utcnow_sorts_lexicographically_in_time_order() -> None:
    # Given timestamps taken a few milliseconds apart
    stamps = []
    for _ in range(5):
        stamps.append(utcnow())
        time.sleep(0.002)

    # Then string order is time order, and they are distinct
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    parsed = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    assert parsed == sorted(parsed)
