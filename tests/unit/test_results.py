"""Annotation results: their shapes (pydantic) and their fit to a label config (validate_results)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from serval.domain.label_config import LabelConfig
from serval.domain.results import Result, problem_details, validate_results

RESULTS = TypeAdapter(list[Result])

CONFIG = LabelConfig.model_validate(
    {
        "controls": [
            {"name": "animal", "type": "classification", "classes": [{"name": "cat"}, {"name": "dog"}]},
            {
                "name": "topics",
                "type": "classification",
                "multiple": True,
                "classes": [{"name": "sport"}, {"name": "news"}, {"name": "tech"}],
            },
            {"name": "boxes", "type": "bbox", "classes": [{"name": "car"}, {"name": "person"}]},
            {"name": "shapes", "type": "polygon", "classes": [{"name": "road"}]},
            {
                "name": "pose",
                "type": "keypoint",
                "classes": [{"name": "person"}],
                "keypoint_names": ["head", "hand"],
            },
            {"name": "entities", "type": "ner", "classes": [{"name": "PER"}, {"name": "ORG"}]},
            {"name": "words", "type": "transcription"},
            {"name": "turns", "type": "audio_segments", "classes": [{"name": "speech"}, {"name": "music"}]},
            {"name": "tracks", "type": "video_bbox", "classes": [{"name": "car"}]},
            {
                "name": "pages",
                "type": "pdf_page_class",
                "classes": [{"name": "invoice"}, {"name": "receipt"}],
            },
        ]
    }
)

VALID: dict[str, dict[str, Any]] = {
    "classification_single": {"control": "animal", "type": "classification", "labels": ["cat"]},
    "classification_multi": {"control": "topics", "type": "classification", "labels": ["sport", "tech"]},
    "bbox": {
        "control": "boxes",
        "type": "bbox",
        "boxes": [
            {"label": "car", "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4},
            {"label": "person", "x": 0, "y": 0, "w": 1, "h": 1},
        ],
    },
    "polygon": {
        "control": "shapes",
        "type": "polygon",
        "polygons": [{"label": "road", "points": [[0, 0], [1, 0], [0.5, 1]]}],
    },
    "keypoint": {
        "control": "pose",
        "type": "keypoint",
        "instances": [
            {
                "label": "person",
                "points": [
                    {"name": "head", "x": 0.5, "y": 0.1},
                    {"name": "hand", "x": 0.4, "y": 0.5, "visible": False},
                ],
            }
        ],
    },
    "ner": {
        "control": "entities",
        "type": "ner",
        "spans": [
            {"label": "PER", "start": 0, "end": 5, "text": "Alice"},
            {"label": "ORG", "start": 15, "end": 19},
        ],
    },
    "transcription": {"control": "words", "type": "transcription", "text": "hello world"},
    "audio_segments": {
        "control": "turns",
        "type": "audio_segments",
        "segments": [
            {"label": "speech", "start_s": 0.0, "end_s": 1.5, "text": "hi"},
            {"label": "music", "start_s": 1.5, "end_s": 9},
        ],
    },
    "video_bbox": {
        "control": "tracks",
        "type": "video_bbox",
        "boxes": [
            {"label": "car", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2, "frame": 0, "track_id": "t1"},
            {"label": "car", "x": 0.2, "y": 0.1, "w": 0.2, "h": 0.2, "frame": 1, "track_id": "t1"},
        ],
    },
    "pdf_page_class": {
        "control": "pages",
        "type": "pdf_page_class",
        "pages": [{"page": 0, "labels": ["invoice"]}, {"page": 1, "labels": ["receipt"]}],
    },
}
TEXT = "Alice works at ACME."  # 20 code points; "ACME" is 15..19


def parse(*raw: dict[str, Any]) -> list[Any]:
    return RESULTS.validate_python(list(raw))


def config_with(*controls: dict[str, Any]) -> LabelConfig:
    return LabelConfig.model_validate({"controls": list(controls)})


@pytest.mark.parametrize("name", list(VALID))
def test_one_valid_result_per_control_type(name: str) -> None:
    # Given a well-formed result for one control
    results = parse(VALID[name])

    # When it is validated against the config (with the task's text length for spans)
    problems = validate_results(CONFIG, results, text_length=len(TEXT))

    # Then there is nothing to report
    assert problems == []


def test_all_controls_together_are_valid() -> None:
    # Given one result for each control (the two classifications are different controls)
    results = parse(*VALID.values())

    # Then the whole set is valid
    assert validate_results(CONFIG, results, text_length=len(TEXT)) == []


def test_result_type_is_chosen_by_discriminator() -> None:
    # Given raw results / When parsed / Then each becomes the model of its type
    parsed = parse(*VALID.values())
    assert [r.type for r in parsed] == [v["type"] for v in VALID.values()]


def test_empty_result_list_is_valid_when_nothing_is_required() -> None:
    assert validate_results(CONFIG, []) == []


# --- failures under the config ---------------------------------------------------------------


def test_unknown_control_is_reported() -> None:
    problems = validate_results(
        CONFIG, parse({"control": "nope", "type": "classification", "labels": ["cat"]})
    )
    assert len(problems) == 1
    assert "unknown control 'nope'" in problems[0]


def test_unknown_class_is_reported() -> None:
    # Given a bbox whose label is not one of the control's classes
    raw = {
        "control": "boxes",
        "type": "bbox",
        "boxes": [{"label": "tree", "x": 0, "y": 0, "w": 0.1, "h": 0.1}],
    }

    # Then the class is named in the problem
    problems = validate_results(CONFIG, parse(raw))
    assert problems == ["boxes: unknown class 'tree'"]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("classification", {"control": "animal", "type": "classification", "labels": ["cow"]}),
        (
            "pdf_page_class",
            {"control": "pages", "type": "pdf_page_class", "pages": [{"page": 0, "labels": ["memo"]}]},
        ),
        ("ner", {"control": "entities", "type": "ner", "spans": [{"label": "LOC", "start": 0, "end": 1}]}),
        (
            "segments",
            {
                "control": "turns",
                "type": "audio_segments",
                "segments": [{"label": "noise", "start_s": 0, "end_s": 1}],
            },
        ),
        (
            "keypoint",
            {
                "control": "pose",
                "type": "keypoint",
                "instances": [{"label": "dog", "points": [{"name": "head", "x": 0, "y": 0}]}],
            },
        ),
        (
            "polygon",
            {
                "control": "shapes",
                "type": "polygon",
                "polygons": [{"label": "river", "points": [[0, 0], [1, 0], [1, 1]]}],
            },
        ),
        (
            "video_bbox",
            {
                "control": "tracks",
                "type": "video_bbox",
                "boxes": [{"label": "bus", "x": 0, "y": 0, "w": 0.1, "h": 0.1, "frame": 3, "track_id": "a"}],
            },
        ),
    ],
)
def test_unknown_class_is_reported_for_every_labelled_type(name: str, raw: dict[str, Any]) -> None:
    problems = validate_results(CONFIG, parse(raw))
    assert len(problems) == 1
    assert "unknown class" in problems[0]


def test_result_type_must_match_the_control_type() -> None:
    # Given a polygon result sent to a bbox control
    raw = {
        "control": "boxes",
        "type": "polygon",
        "polygons": [{"label": "car", "points": [[0, 0], [1, 0], [1, 1]]}],
    }

    # Then the mismatch is reported (and nothing else about it)
    problems = validate_results(CONFIG, parse(raw))
    assert problems == ["control 'boxes' is bbox, not polygon"]


def test_two_results_for_one_control_are_reported() -> None:
    first = {"control": "animal", "type": "classification", "labels": ["cat"]}
    second = {"control": "animal", "type": "classification", "labels": ["dog"]}
    problems = validate_results(CONFIG, parse(first, second))
    assert len(problems) == 1
    assert "appears twice" in problems[0]


def test_several_labels_on_a_single_choice_classification_are_reported() -> None:
    problems = validate_results(
        CONFIG, parse({"control": "animal", "type": "classification", "labels": ["cat", "dog"]})
    )
    assert problems == ["animal: single-choice classification takes exactly one label"]


def test_missing_required_control_is_reported() -> None:
    # Given a config with a required control and an optional one
    config = config_with(
        {"name": "must", "type": "classification", "required": True, "classes": [{"name": "a"}]},
        {"name": "may", "type": "transcription"},
    )

    # When only the optional one is answered
    problems = validate_results(config, parse({"control": "may", "type": "transcription", "text": "x"}))

    # Then the required one is reported missing
    assert problems == ["required control 'must' has no result"]
    # And answering it clears the problem
    assert (
        validate_results(config, parse({"control": "must", "type": "classification", "labels": ["a"]})) == []
    )


def test_span_beyond_the_text_is_reported() -> None:
    raw = {
        "control": "entities",
        "type": "ner",
        "spans": [{"label": "PER", "start": 15, "end": len(TEXT) + 1}],
    }
    problems = validate_results(CONFIG, parse(raw), text_length=len(TEXT))
    assert len(problems) == 1
    assert "outside the text" in problems[0]


def test_span_ending_exactly_at_the_text_end_is_valid() -> None:
    raw = {"control": "entities", "type": "ner", "spans": [{"label": "ORG", "start": 15, "end": len(TEXT)}]}
    assert validate_results(CONFIG, parse(raw), text_length=len(TEXT)) == []


def test_spans_are_not_bounded_when_the_text_length_is_unknown() -> None:
    # Given a task whose text is not inline (length unknown) / Then span ends cannot be checked
    raw = {"control": "entities", "type": "ner", "spans": [{"label": "PER", "start": 0, "end": 10_000}]}
    assert validate_results(CONFIG, parse(raw), text_length=None) == []


# --- attributes ------------------------------------------------------------------------------

ATTR_CONFIG = config_with(
    {
        "name": "boxes",
        "type": "bbox",
        "attributes": [{"name": "occluded", "type": "boolean", "required": True}],
        "classes": [
            {"name": "car", "attributes": [{"name": "kind", "type": "choice", "choices": ["suv", "van"]}]},
            {"name": "person"},
        ],
    },
    {
        "name": "turns",
        "type": "audio_segments",
        "classes": [
            {"name": "speech", "attributes": [{"name": "speaker", "type": "text", "required": True}]}
        ],
    },
)


def bbox(label: str, **attributes: Any) -> dict[str, Any]:
    return {
        "control": "boxes",
        "type": "bbox",
        "boxes": [{"label": label, "x": 0, "y": 0, "w": 0.5, "h": 0.5, "attributes": attributes}],
    }


def test_valid_attributes_pass() -> None:
    assert validate_results(ATTR_CONFIG, parse(bbox("car", occluded=False, kind="van"))) == []
    assert validate_results(ATTR_CONFIG, parse(bbox("person", occluded=True))) == []


def test_required_control_attribute_missing_is_reported() -> None:
    problems = validate_results(ATTR_CONFIG, parse(bbox("person")))
    assert problems == ["boxes: attribute 'occluded' is required"]


def test_required_class_attribute_missing_is_reported() -> None:
    raw = {
        "control": "turns",
        "type": "audio_segments",
        "segments": [{"label": "speech", "start_s": 0, "end_s": 1}],
    }
    problems = validate_results(ATTR_CONFIG, parse(raw))
    assert problems == ["turns: attribute 'speaker' is required"]


def test_unknown_attribute_is_reported() -> None:
    problems = validate_results(ATTR_CONFIG, parse(bbox("person", occluded=True, colour="red")))
    assert problems == ["boxes: unknown attribute 'colour' on class 'person'"]


def test_class_attribute_is_unknown_on_another_class() -> None:
    # Given the car-only attribute 'kind' used on a person / Then it is unknown there
    problems = validate_results(ATTR_CONFIG, parse(bbox("person", occluded=True, kind="suv")))
    assert problems == ["boxes: unknown attribute 'kind' on class 'person'"]


def test_choice_attribute_outside_its_choices_is_reported() -> None:
    problems = validate_results(ATTR_CONFIG, parse(bbox("car", occluded=True, kind="truck")))
    assert len(problems) == 1
    assert "attribute 'kind' must be one of" in problems[0]


def test_every_problem_is_reported_at_once() -> None:
    # Given a result with several independent problems
    results = parse(
        {"control": "ghost", "type": "transcription", "text": "x"},
        bbox("tree", colour="red"),
    )

    # Then all of them are reported, not just the first
    problems = validate_results(ATTR_CONFIG, results)
    assert "unknown control 'ghost'" in problems
    assert "boxes: unknown class 'tree'" in problems
    assert any("unknown attribute 'colour'" in p for p in problems)
    assert "boxes: attribute 'occluded' is required" in problems


# --- shapes (pydantic) -----------------------------------------------------------------------

BOX = {"label": "car", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"x": -0.1}]}, id="x<0"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"y": 1.1}]}, id="y>1"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"w": 1.5}]}, id="w>1"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"x": 0.7, "w": 0.4}]}, id="x+w>1"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"y": 0.9, "h": 0.2}]}, id="y+h>1"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"score": 1.2}]}, id="score>1"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"rotation": 400}]}, id="rotation"),
        pytest.param({"control": "b", "type": "bbox", "boxes": [BOX | {"extra": 1}]}, id="unknown-field"),
        pytest.param(
            {
                "control": "v",
                "type": "video_bbox",
                "boxes": [BOX | {"x": 0.9, "w": 0.2, "frame": 0, "track_id": "t"}],
            },
            id="frame-box-outside",
        ),
        pytest.param(
            {"control": "v", "type": "video_bbox", "boxes": [BOX | {"frame": -1, "track_id": "t"}]},
            id="negative-frame",
        ),
        pytest.param(
            {"control": "v", "type": "video_bbox", "boxes": [BOX | {"frame": 0, "track_id": ""}]},
            id="empty-track",
        ),
        pytest.param(
            {
                "control": "s",
                "type": "audio_segments",
                "segments": [{"label": "a", "start_s": 2, "end_s": 1}],
            },
            id="segment-end<start",
        ),
        pytest.param(
            {
                "control": "s",
                "type": "audio_segments",
                "segments": [{"label": "a", "start_s": 1, "end_s": 1}],
            },
            id="segment-end=start",
        ),
        pytest.param(
            {
                "control": "s",
                "type": "audio_segments",
                "segments": [{"label": "a", "start_s": -1, "end_s": 1}],
            },
            id="segment-negative",
        ),
        pytest.param(
            {"control": "n", "type": "ner", "spans": [{"label": "a", "start": 5, "end": 3}]},
            id="span-end<start",
        ),
        pytest.param(
            {"control": "n", "type": "ner", "spans": [{"label": "a", "start": 3, "end": 3}]},
            id="span-end=start",
        ),
        pytest.param(
            {"control": "n", "type": "ner", "spans": [{"label": "a", "start": -1, "end": 3}]},
            id="span-negative",
        ),
        pytest.param(
            {"control": "p", "type": "polygon", "polygons": [{"label": "a", "points": [[0, 0], [1, 1]]}]},
            id="polygon-2-points",
        ),
        pytest.param(
            {
                "control": "p",
                "type": "polygon",
                "polygons": [{"label": "a", "points": [[0, 0], [1, 1], [2, 0]]}],
            },
            id="polygon-point-outside",
        ),
        pytest.param(
            {"control": "k", "type": "keypoint", "instances": [{"label": "a", "points": []}]},
            id="keypoint-no-points",
        ),
        pytest.param({"control": "c", "type": "classification", "labels": []}, id="classification-no-labels"),
        pytest.param(
            {"control": "d", "type": "pdf_page_class", "pages": [{"page": 0, "labels": []}]},
            id="page-no-labels",
        ),
        pytest.param(
            {"control": "d", "type": "pdf_page_class", "pages": [{"page": -1, "labels": ["a"]}]},
            id="page-negative",
        ),
        pytest.param({"control": "", "type": "classification", "labels": ["a"]}, id="empty-control"),
        pytest.param({"control": "c", "type": "sketch", "labels": ["a"]}, id="unknown-type"),
        pytest.param({"control": "c", "labels": ["a"]}, id="no-type"),
    ],
)
def test_malformed_result_shapes_are_rejected(raw: dict[str, Any]) -> None:
    # Given a result whose shape is impossible / When parsed / Then pydantic refuses it
    with pytest.raises(ValidationError):
        parse(raw)


def test_box_touching_the_far_edges_is_accepted() -> None:
    # Given a box that exactly reaches the right and bottom edges (float rounding included)
    (result,) = parse(
        {"control": "b", "type": "bbox", "boxes": [{"label": "a", "x": 0.7, "y": 0.1, "w": 0.3, "h": 0.9}]}
    )
    assert result.boxes[0].x + result.boxes[0].w == pytest.approx(1.0)


# --- regressions for bugs found while writing these tests ----------------------------------------------------


def test_single_choice_pdf_page_class_rejects_two_labels_on_a_page() -> None:
    # Given a pdf_page_class control without multiple=True
    config = config_with(
        {"name": "pages", "type": "pdf_page_class", "classes": [{"name": "a"}, {"name": "b"}]}
    )

    # When one page gets two labels
    raw = {"control": "pages", "type": "pdf_page_class", "pages": [{"page": 0, "labels": ["a", "b"]}]}

    # Then it is reported, like a single-choice classification
    assert validate_results(config, parse(raw)) != []


@pytest.mark.parametrize(("attr_type", "value"), [("number", "heavy"), ("boolean", 3.5), ("text", True)])
def test_attribute_value_must_match_its_declared_type(attr_type: str, value: Any) -> None:
    # Given a bbox control with a typed attribute
    config = config_with(
        {
            "name": "boxes",
            "type": "bbox",
            "attributes": [{"name": "a", "type": attr_type}],
            "classes": [{"name": "car"}],
        }
    )

    # When a region sets that attribute to a value of another type
    raw = {
        "control": "boxes",
        "type": "bbox",
        "boxes": [{"label": "car", "x": 0, "y": 0, "w": 0.1, "h": 0.1, "attributes": {"a": value}}],
    }

    # Then it is reported
    assert validate_results(config, parse(raw)) != []


def test_keypoint_not_in_the_skeleton_is_reported() -> None:
    # Given a keypoint control whose skeleton is head+hand / When a point named 'tail' is sent
    raw = {
        "control": "pose",
        "type": "keypoint",
        "instances": [{"label": "person", "points": [{"name": "tail", "x": 0.5, "y": 0.5}]}],
    }

    # Then it is reported
    assert validate_results(CONFIG, parse(raw)) != []


# --- degenerate geometry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(
            {"control": "boxes", "type": "bbox", "boxes": [BOX | {"w": 0, "h": 0}]},
            "box 0 has no area",
            id="0x0",
        ),
        pytest.param(
            {"control": "boxes", "type": "bbox", "boxes": [BOX, BOX | {"w": 0.0}]},
            "box 1 has no area",
            id="w=0",
        ),
        pytest.param(
            {"control": "boxes", "type": "bbox", "boxes": [BOX | {"h": 0.0}]}, "box 0 has no area", id="h=0"
        ),
        pytest.param(
            {
                "control": "tracks",
                "type": "video_bbox",
                "boxes": [BOX | {"w": 0, "frame": 3, "track_id": "t1"}],
            },
            "box 0 has no area",
            id="video-w=0",
        ),
        pytest.param(
            {
                "control": "shapes",
                "type": "polygon",
                "polygons": [{"label": "road", "points": [[0.1, 0.1]] * 3}],
            },
            "polygon 0 needs at least 3 distinct points",
            id="one-point",
        ),
        pytest.param(
            {
                "control": "shapes",
                "type": "polygon",
                "polygons": [{"label": "road", "points": [[0, 0], [1, 1], [0, 0], [1, 1]]}],
            },
            "polygon 0 needs at least 3 distinct points",
            id="two-points",
        ),
        pytest.param(
            {
                "control": "shapes",
                "type": "polygon",
                "polygons": [{"label": "road", "points": [[0, 0], [0.5, 0.5], [1, 1]]}],
            },
            "polygon 0 has no area",
            id="collinear",
        ),
    ],
)
def test_regions_that_cover_nothing_are_reported(raw: dict[str, Any], problem: str) -> None:
    # Given a box of zero width or height, or a polygon without area
    problems = validate_results(CONFIG, parse(raw))

    # Then it is a problem (a 422 on every write path), named by its position
    assert [p for p in problems if problem in p], problems


def test_small_but_real_regions_are_accepted() -> None:
    # Given a one-pixel box of a 4k image and a thin triangle / Then they are valid
    pixel = 1 / 4096
    raw = [
        {"control": "boxes", "type": "bbox", "boxes": [BOX | {"w": pixel, "h": pixel}]},
        {
            "control": "shapes",
            "type": "polygon",
            "polygons": [{"label": "road", "points": [[0, 0], [1, 0], [0.5, pixel]]}],
        },
    ]
    assert validate_results(CONFIG, [r for item in raw for r in parse(item)]) == []


def test_every_problem_is_located_at_the_region_it_concerns() -> None:
    # Given a second result whose second box has no area and an unknown class, an attribute
    # of the wrong type on a box, a span past the text's end, and a required control missing
    config = config_with(
        {
            "name": "boxes",
            "type": "bbox",
            "classes": [{"name": "car"}],
            "attributes": [{"name": "occluded", "type": "boolean"}],
        },
        {"name": "entities", "type": "ner", "classes": [{"name": "PER"}]},
        {"name": "animal", "type": "classification", "required": True, "classes": [{"name": "cat"}]},
    )
    results = parse(
        {"control": "entities", "type": "ner", "spans": [{"label": "PER", "start": 0, "end": 99}]},
        {
            "control": "boxes",
            "type": "bbox",
            "boxes": [
                {"label": "car", "x": 0, "y": 0, "w": 0.5, "h": 0.5, "attributes": {"occluded": "yes"}},
                {"label": "tree", "x": 0, "y": 0, "w": 0, "h": 0.5},
            ],
        },
    )

    details = problem_details(validate_results(config, results, text_length=20))

    # Then each is placed in the request body where a client can show it
    located = {(tuple(d["location"]), d["control"]) for d in details}
    assert located == {
        (("body", "results", 0, "spans", 0), "entities"),
        (("body", "results", 1, "boxes", 0, "attributes", "occluded"), "boxes"),
        (("body", "results", 1, "boxes", 1, "label"), "boxes"),
        (("body", "results", 1, "boxes", 1), "boxes"),
        (("body", "results"), "animal"),
    }
    assert all(d["type"] == "results" and d["message"] for d in details)
