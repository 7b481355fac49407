"""The label configuration: controls, classes, attributes, and which media they fit."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from serval.domain.label_config import (
    CLASSLESS,
    CONTROL_MEDIA,
    AttributeSpec,
    AttributeType,
    ControlSpec,
    ControlType,
    LabelConfig,
)
from serval.domain.media import MediaType

CLASSES = [{"name": "cat"}, {"name": "dog"}]


def control(type_: ControlType | str, name: str = "c", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "type": str(type_)}
    if ControlType(type_) not in CLASSLESS:
        spec["classes"] = CLASSES
    return spec | extra


@pytest.mark.parametrize("type_", [t for t in ControlType if t not in CLASSLESS])
def test_every_classed_control_type_is_accepted_with_classes(type_: ControlType) -> None:
    # Given a control of this type with two classes
    # When the config is built
    config = LabelConfig.model_validate({"controls": [control(type_)]})

    # Then it keeps the control and its classes
    spec = config.control("c")
    assert spec is not None
    assert spec.type is type_
    assert spec.class_names() == {"cat", "dog"}


def test_transcription_is_accepted_without_classes() -> None:
    # Given a transcription control with no classes / When built / Then it is valid
    config = LabelConfig.model_validate({"controls": [{"name": "t", "type": "transcription"}]})
    assert config.controls[0].class_names() == frozenset()


def test_transcription_with_classes_is_rejected() -> None:
    # Given a transcription control that declares classes / Then the config is refused
    with pytest.raises(ValidationError, match="takes no classes"):
        ControlSpec.model_validate({"name": "t", "type": "transcription", "classes": CLASSES})


@pytest.mark.parametrize("type_", [t for t in ControlType if t not in CLASSLESS])
def test_classless_classed_control_is_rejected(type_: ControlType) -> None:
    # Given a control type that needs classes, declared without any / Then it is refused
    with pytest.raises(ValidationError, match="needs at least one class"):
        ControlSpec.model_validate({"name": "c", "type": type_.value})


def test_duplicate_control_names_are_rejected() -> None:
    # Given two controls with the same name / Then the config is refused
    with pytest.raises(ValidationError, match="control names must be unique"):
        LabelConfig.model_validate({"controls": [control("bbox", "x"), control("classification", "x")]})


def test_duplicate_class_names_are_rejected() -> None:
    # Given a control listing the same class twice / Then it is refused
    with pytest.raises(ValidationError, match="duplicate class names"):
        ControlSpec.model_validate({"name": "c", "type": "bbox", "classes": [{"name": "a"}, {"name": "a"}]})


@pytest.mark.parametrize("type_", [ControlType.CLASSIFICATION, ControlType.PDF_PAGE_CLASS])
def test_multiple_is_accepted_on_classification_kinds(type_: ControlType) -> None:
    # Given a multi-choice classification-like control / Then it is valid and keeps the flag
    assert ControlSpec.model_validate(control(type_, multiple=True)).multiple is True


@pytest.mark.parametrize(
    "type_", [t for t in ControlType if t not in {ControlType.CLASSIFICATION, ControlType.PDF_PAGE_CLASS}]
)
def test_multiple_is_rejected_on_other_controls(type_: ControlType) -> None:
    # Given multiple=True on a control where it means nothing / Then it is refused
    with pytest.raises(ValidationError, match="multiple applies to"):
        ControlSpec.model_validate(control(type_, multiple=True))


def test_choice_attribute_needs_choices() -> None:
    # Given a choice attribute with no choices / Then it is refused
    with pytest.raises(ValidationError, match="needs choices"):
        AttributeSpec.model_validate({"name": "pose", "type": "choice"})


@pytest.mark.parametrize("type_", [AttributeType.TEXT, AttributeType.NUMBER, AttributeType.BOOLEAN])
def test_only_choice_attributes_have_choices(type_: AttributeType) -> None:
    # Given a non-choice attribute that lists choices / Then it is refused
    with pytest.raises(ValidationError, match="only choice attributes"):
        AttributeSpec.model_validate({"name": "a", "type": type_.value, "choices": ["x"]})


def test_choice_attribute_with_choices_on_class_and_control() -> None:
    # Given attributes on both the control and one class
    spec = ControlSpec.model_validate(
        control(
            "bbox",
            attributes=[{"name": "occluded", "type": "boolean"}],
            classes=[
                {"name": "car", "attributes": [{"name": "kind", "type": "choice", "choices": ["suv", "van"]}]}
            ],
        )
    )

    # Then both are kept
    assert [a.name for a in spec.attributes] == ["occluded"]
    assert spec.classes[0].attributes[0].choices == ["suv", "van"]


@pytest.mark.parametrize(
    "bad",
    [
        {"controls": []},  # at least one control
        {"controls": [control("bbox")], "version": 0},
        {"controls": [control("bbox")], "surprise": True},  # unknown keys are refused
        {"controls": [control("bbox", name="bad/name")]},
        {"controls": [control("bbox", name="")]},
        {"controls": [control("bbox", classes=[{"name": "a", "color": "red"}])]},
        {"controls": [control("bbox", classes=[{"name": "a", "hotkey": "ab"}])]},
        {"controls": [{"name": "c", "type": "nope"}]},
        {"controls": [{"name": "c", "type": "bbox", "classes": [{"name": "a", "extra": 1}]}]},
    ],
)
def test_malformed_configs_are_rejected(bad: dict[str, Any]) -> None:
    # Given a malformed config / Then validation fails
    with pytest.raises(ValidationError):
        LabelConfig.model_validate(bad)


def test_control_lookup_by_name() -> None:
    # Given a config with two controls / Then each is found by name, an unknown name gives None
    config = LabelConfig.model_validate({"controls": [control("bbox", "boxes"), control("ner", "ents")]})
    assert config.control("ents").type is ControlType.NER  # type: ignore[union-attr]
    assert config.control("missing") is None


def test_check_media_flags_a_bbox_on_an_audio_only_project() -> None:
    # Given a bbox control
    config = LabelConfig.model_validate({"controls": [control("bbox", "boxes")]})

    # When it is checked against an audio-only project
    problems = config.check_media([MediaType.AUDIO])

    # Then exactly one problem names the control and the media it needs
    assert len(problems) == 1
    assert "boxes" in problems[0]
    assert "image" in problems[0]


def test_check_media_accepts_ner_for_text() -> None:
    config = LabelConfig.model_validate({"controls": [control("ner")]})
    assert config.check_media([MediaType.TEXT]) == []


def test_check_media_accepts_when_any_project_media_fits() -> None:
    # Given a mixed image+text project with an image control and a text control
    config = LabelConfig.model_validate({"controls": [control("bbox", "b"), control("ner", "n")]})

    # Then neither is flagged
    assert config.check_media([MediaType.IMAGE, MediaType.TEXT]) == []
    # But a text-only project flags only the bbox
    assert len(config.check_media([MediaType.TEXT])) == 1


@pytest.mark.parametrize("media", list(MediaType))
def test_classification_fits_every_media_type(media: MediaType) -> None:
    config = LabelConfig.model_validate({"controls": [control("classification")]})
    assert config.check_media([media]) == []


@pytest.mark.parametrize(("type_", "fits"), [(t, m) for t in ControlType for m in MediaType])
def test_check_media_matches_the_control_media_table(type_: ControlType, fits: MediaType) -> None:
    # Given one control / When checked against one media type / Then it is flagged iff the table says so
    config = LabelConfig.model_validate({"controls": [control(type_)]})
    assert (config.check_media([fits]) == []) == (fits in CONTROL_MEDIA[type_])


def test_every_control_type_declares_its_media() -> None:
    assert set(CONTROL_MEDIA) == set(ControlType)
    assert all(CONTROL_MEDIA[t] for t in ControlType)


@pytest.mark.parametrize("media", list(MediaType))
def test_every_media_type_has_a_specific_control(media: MediaType) -> None:
    # Given any media type / Then some control other than plain classification can annotate it
    specific = [t for t in ControlType if t is not ControlType.CLASSIFICATION and media in CONTROL_MEDIA[t]]
    assert specific, f"no specific control type for {media}"
