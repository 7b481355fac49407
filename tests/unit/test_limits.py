"""Stored sizes as DynamoDB counts them, and the limits on label configurations and annotations."""

from __future__ import annotations

import json

import pytest

from serval.adapters import dynamo
from serval.adapters.dynamo_models import Utf8JSONAttribute
from serval.domain import limits
from serval.domain.label_config import LabelConfig
from serval.domain.results import NerResult, validate_results
from serval.errors import AnnotationTooLarge, ItemTooLarge, LabelConfigTooLarge

EMOJI = "\U0001f600"


def test_item_size_follows_dynamodb_rules() -> None:
    # Given an item of every attribute type
    item = {
        "PK": {"S": "p"},  # 2 + 1
        "név": {"S": EMOJI},  # 4 (é is 2 bytes) + 4
        "n": {"N": "12345.6700"},  # 1 + (7 significant digits + 1) // 2 + 1 = 1 + 5
        "big": {"N": "-0.000123"},  # 3 + (3 digits + 1) // 2 + 1 = 3 + 3
        "ok": {"BOOL": True},  # 2 + 1
        "none": {"NULL": True},  # 4 + 1
        "l": {"L": [{"S": "ab"}, {"N": "1"}]},  # 1 + 3 + (1 + 2) + (1 + 2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + 1 + 1 + 1
        "ss": {"SS": ["a", "bb"]},  # 2 + 3
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3
    }
    # Then its size is the sum of names and values as DynamoDB counts them
    assert dynamo.item_size(item) == 3 + 8 + 6 + 6 + 3 + 5 + 10 + 7 + 5 + 4


def test_json_attributes_store_non_ascii_text_as_utf8() -> None:
    # Given text of emoji, accents and CJK
    value = {"text": EMOJI * 3 + "é" + "猫", "n": [1, 2]}
    # When it is serialized for DynamoDB
    stored = Utf8JSONAttribute().serialize(value)
    # Then it is compact UTF-8 (not 6-12 byte escapes), reads back unchanged, and is what
    # limits.json_bytes measures
    assert stored == '{"text":"' + EMOJI * 3 + 'é猫","n":[1,2]}'
    assert Utf8JSONAttribute().deserialize(stored) == value
    assert limits.json_bytes(value) == len(stored.encode("utf-8")) == 9 + 12 + 2 + 3 + 12
    assert len(json.dumps(value)) > 1.9 * limits.json_bytes(value)  # what the default escaping stored


def test_text_with_a_lone_surrogate_keeps_its_escape() -> None:
    # Given text that UTF-8 cannot hold
    value = {"text": "a\ud800b"}
    # Then it is stored escaped, and reads back the same
    stored = Utf8JSONAttribute().serialize(value)
    assert stored is not None and "\\ud800" in stored
    assert Utf8JSONAttribute().deserialize(stored) == value


def test_check_item_refuses_an_item_over_the_limit() -> None:
    item = {"PK": {"S": "x" * (limits.MAX_ITEM_BYTES - 2)}}
    assert dynamo.check_item(item, "task") == limits.MAX_ITEM_BYTES
    with pytest.raises(ItemTooLarge) as refused:
        dynamo.check_item({"PK": {"S": "x" * (limits.MAX_ITEM_BYTES - 1)}}, "task")
    assert refused.value.code == "item_too_large"
    assert refused.value.details == {
        "entity": "task",
        "bytes": limits.MAX_ITEM_BYTES + 1,
        "limit": limits.MAX_ITEM_BYTES,
    }


def _config(classes: int, controls: int = 1) -> LabelConfig:
    return LabelConfig.model_validate(
        {
            "controls": [
                {
                    "name": f"c{c}",
                    "type": "classification",
                    "classes": [{"name": f"k{i}"} for i in range(classes)],
                }
                for c in range(controls)
            ]
        }
    )


def test_label_configurations_are_limited_by_classes_per_control_in_all_and_by_size() -> None:
    limits.check_label_config(_config(limits.MAX_CLASSES_PER_CONTROL))
    with pytest.raises(LabelConfigTooLarge, match="at most 1000 classes"):
        limits.check_label_config(_config(limits.MAX_CLASSES_PER_CONTROL + 1))
    with pytest.raises(LabelConfigTooLarge, match="in all"):
        limits.check_label_config(_config(700, controls=3))
    # 2,000 classes and instructions of 19,000 emoji (under 20,000 characters; 76 KB stored)
    wordy = LabelConfig(controls=_config(1_000, controls=2).controls, instructions=EMOJI * 19_000)
    with pytest.raises(LabelConfigTooLarge, match="bytes stored") as refused:
        limits.check_label_config(wordy)
    assert refused.value.code == "label_config_too_large"


def test_annotations_are_limited_by_regions_and_size_before_other_checks() -> None:
    config = LabelConfig.model_validate(
        {"controls": [{"name": "e", "type": "ner", "classes": [{"name": "p"}]}]}
    )
    spans = [{"label": "p", "start": 0, "end": 1}] * limits.MAX_REGIONS
    assert validate_results(config, [NerResult(control="e", spans=spans)]) == []  # type: ignore[arg-type]
    with pytest.raises(AnnotationTooLarge, match="regions"):
        validate_results(config, [NerResult(control="e", spans=[*spans, spans[0]])])  # type: ignore[arg-type]
    long_text = [{"label": "p", "start": 0, "end": 1, "text": "y" * limits.MAX_ANNOTATION_BYTES}]
    with pytest.raises(AnnotationTooLarge, match="bytes stored"):
        validate_results(config, [NerResult(control="e", spans=long_text)])  # type: ignore[arg-type]
