"""The label configuration: which controls a project annotates, with classes and attributes.

One document covers every media type. Each control names the data key it applies
to (``source``), so a task with ``{"image": ..., "caption": ...}`` can carry a bbox
control on the image and a classification on the caption.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serval.domain.media import MediaType

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\- ]+$")]


class ControlType(StrEnum):
    CLASSIFICATION = "classification"
    BBOX = "bbox"
    POLYGON = "polygon"
    KEYPOINT = "keypoint"
    NER = "ner"
    TRANSCRIPTION = "transcription"
    AUDIO_SEGMENTS = "audio_segments"
    VIDEO_BBOX = "video_bbox"
    PDF_PAGE_CLASS = "pdf_page_class"


# Which media each control can annotate, and whether it needs classes.
CONTROL_MEDIA: dict[ControlType, frozenset[MediaType]] = {
    ControlType.CLASSIFICATION: frozenset(MediaType),
    ControlType.BBOX: frozenset({MediaType.IMAGE}),
    ControlType.POLYGON: frozenset({MediaType.IMAGE}),
    ControlType.KEYPOINT: frozenset({MediaType.IMAGE}),
    ControlType.NER: frozenset({MediaType.TEXT, MediaType.DOCUMENT}),
    ControlType.TRANSCRIPTION: frozenset(
        {MediaType.AUDIO, MediaType.VIDEO, MediaType.IMAGE, MediaType.DOCUMENT}
    ),
    ControlType.AUDIO_SEGMENTS: frozenset({MediaType.AUDIO, MediaType.VIDEO}),
    ControlType.VIDEO_BBOX: frozenset({MediaType.VIDEO}),
    ControlType.PDF_PAGE_CLASS: frozenset({MediaType.DOCUMENT}),
}
CLASSLESS = frozenset({ControlType.TRANSCRIPTION})


class AttributeType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class AttributeSpec(BaseModel):
    """An attribute an annotator fills in for a region or class (e.g. ``occluded``)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: AttributeType
    choices: list[Name] = Field(default_factory=list)
    required: bool = False

    @model_validator(mode="after")
    def _choices(self) -> AttributeSpec:
        if self.type is AttributeType.CHOICE and not self.choices:
            raise ValueError(f"attribute {self.name!r} of type choice needs choices")
        if self.type is not AttributeType.CHOICE and self.choices:
            raise ValueError(f"attribute {self.name!r}: only choice attributes have choices")
        return self


class ClassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    hotkey: str | None = Field(default=None, max_length=1)
    attributes: list[AttributeSpec] = Field(default_factory=list)


class ControlSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: ControlType
    source: str | None = Field(
        default=None, description="Data key this control annotates; defaults to the task's primary media."
    )
    multiple: bool = Field(default=False, description="classification: allow several classes.")
    classes: list[ClassSpec] = Field(default_factory=list)
    attributes: list[AttributeSpec] = Field(default_factory=list)
    required: bool = False
    keypoint_names: list[Name] = Field(default_factory=list, description="keypoint: the skeleton's points.")

    @model_validator(mode="after")
    def _classes(self) -> ControlSpec:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"control {self.name!r} has duplicate class names")
        if self.type not in CLASSLESS and not self.classes:
            raise ValueError(f"control {self.name!r} of type {self.type.value} needs at least one class")
        if self.type in CLASSLESS and self.classes:
            raise ValueError(f"control {self.name!r} of type {self.type.value} takes no classes")
        if self.multiple and self.type not in {ControlType.CLASSIFICATION, ControlType.PDF_PAGE_CLASS}:
            raise ValueError("multiple applies to classification and pdf_page_class controls only")
        return self

    def class_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.classes)


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(default=1, ge=1, description="Bumped on every change; annotations record it.")
    controls: list[ControlSpec] = Field(min_length=1, max_length=50)
    instructions: str = Field(default="", max_length=20_000)

    @model_validator(mode="after")
    def _unique(self) -> LabelConfig:
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError("control names must be unique")
        return self

    def control(self, name: str) -> ControlSpec | None:
        return next((c for c in self.controls if c.name == name), None)

    def check_media(self, media_types: list[MediaType]) -> list[str]:
        """Problems with using this config for a project of ``media_types``."""
        problems = []
        for control in self.controls:
            if not CONTROL_MEDIA[control.type] & set(media_types):
                allowed = sorted(m.value for m in CONTROL_MEDIA[control.type])
                problems.append(
                    f"control {control.name!r} ({control.type.value}) needs one of the media types {allowed}"
                )
        return problems
