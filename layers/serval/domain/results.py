"""Normalized annotation results, one shape per control type.

Geometry is relative to the media (0..1 of width and height), so results do not
depend on the resolution a client displayed. Times are seconds, text offsets are
Unicode code points, pages and frames are 0-based.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serval.domain.label_config import AttributeSpec, AttributeType, ControlSpec, ControlType, LabelConfig
from serval.domain.limits import check_annotation

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Attributes = dict[str, str | float | bool]


Location = tuple[str | int, ...]
_REGION_FIELDS = ("boxes", "polygons", "instances", "spans", "segments")


class Problem(str):
    """A reason results do not fit a label configuration: its sentence, the control it concerns,
    and where it is (``location``: the index in the results list, then field names and indexes,
    e.g. ``(0, "boxes", 2, "label")``), so a client can show it on the region it concerns."""

    __slots__ = ("control", "location")
    control: str | None
    location: Location

    def __new__(cls, message: str, control: str | None = None, location: Location = ()) -> Problem:
        problem = super().__new__(cls, message)
        problem.control = control
        problem.location = location
        return problem


def problem_details(problems: list[Problem]) -> list[dict[str, Any]]:
    """The error envelope's details for ``problems``, located in the request body like the
    API's schema errors (``["body", "results", ...]``)."""
    return [
        {
            "location": ["body", "results", *p.location],
            "message": str(p),
            "type": "results",
            "control": p.control,
        }
        for p in problems
    ]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control: str = Field(min_length=1, max_length=64)


class _Region(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    attributes: Attributes = Field(default_factory=dict)
    score: Score | None = None


class Box(_Region):
    x: Unit
    y: Unit
    w: Unit
    h: Unit
    rotation: float = Field(default=0.0, ge=-360, le=360)

    @model_validator(mode="after")
    def _inside(self) -> Box:
        if self.x + self.w > 1.0 + 1e-9 or self.y + self.h > 1.0 + 1e-9:
            raise ValueError("box extends outside the media (x+w and y+h must be <= 1)")
        return self


class Polygon(_Region):
    points: list[tuple[Unit, Unit]] = Field(min_length=3, max_length=10_000)


class Keypoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    x: Unit
    y: Unit
    visible: bool = True


class KeypointSet(_Region):
    points: list[Keypoint] = Field(min_length=1, max_length=500)


class Span(_Region):
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    text: str | None = None

    @model_validator(mode="after")
    def _order(self) -> Span:
        if self.end <= self.start:
            raise ValueError("span end must be greater than start")
        return self


class Segment(_Region):
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    text: str | None = Field(default=None, max_length=100_000)

    @model_validator(mode="after")
    def _order(self) -> Segment:
        if self.end_s <= self.start_s:
            raise ValueError("segment end_s must be greater than start_s")
        return self


class FrameBox(Box):
    frame: int = Field(ge=0)
    track_id: str = Field(min_length=1, max_length=64)


class PageLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page: int = Field(ge=0)
    labels: list[str] = Field(min_length=1)


class ClassificationResult(_Result):
    type: Literal["classification"] = "classification"
    labels: list[str] = Field(min_length=1)


class BBoxResult(_Result):
    type: Literal["bbox"] = "bbox"
    boxes: list[Box] = Field(max_length=10_000)


class PolygonResult(_Result):
    type: Literal["polygon"] = "polygon"
    polygons: list[Polygon] = Field(max_length=10_000)


class KeypointResult(_Result):
    type: Literal["keypoint"] = "keypoint"
    instances: list[KeypointSet] = Field(max_length=1_000)


class NerResult(_Result):
    type: Literal["ner"] = "ner"
    spans: list[Span] = Field(max_length=10_000)


class TranscriptionResult(_Result):
    type: Literal["transcription"] = "transcription"
    text: str = Field(max_length=200_000)


class AudioSegmentsResult(_Result):
    type: Literal["audio_segments"] = "audio_segments"
    segments: list[Segment] = Field(max_length=10_000)


class VideoBBoxResult(_Result):
    type: Literal["video_bbox"] = "video_bbox"
    boxes: list[FrameBox] = Field(max_length=100_000)


class PdfPageClassResult(_Result):
    type: Literal["pdf_page_class"] = "pdf_page_class"
    pages: list[PageLabels] = Field(max_length=10_000)


Result = Annotated[
    ClassificationResult
    | BBoxResult
    | PolygonResult
    | KeypointResult
    | NerResult
    | TranscriptionResult
    | AudioSegmentsResult
    | VideoBBoxResult
    | PdfPageClassResult,
    Field(discriminator="type"),
]


def _labels_of(result: Any) -> list[tuple[Location, str]]:
    """Every class name a result uses, with where it is in the result."""
    match result:
        case ClassificationResult():
            return [(("labels", k), label) for k, label in enumerate(result.labels)]
        case PdfPageClassResult():
            return [
                (("pages", p, "labels", k), label)
                for p, page in enumerate(result.pages)
                for k, label in enumerate(page.labels)
            ]
        case TranscriptionResult():
            return []
        case _:
            field = next(f for f in _REGION_FIELDS if hasattr(result, f))
            return [((field, j, "label"), r.label) for j, r in enumerate(getattr(result, field))]


_ATTRIBUTE_TYPES: dict[AttributeType, tuple[type, ...]] = {
    AttributeType.TEXT: (str,),
    AttributeType.CHOICE: (str,),
    AttributeType.NUMBER: (int, float),
    AttributeType.BOOLEAN: (bool,),
}


def _type_ok(spec: AttributeSpec, value: object) -> bool:
    if isinstance(value, bool) and spec.type is not AttributeType.BOOLEAN:
        return False  # bool is an int subclass: never a number or text
    return isinstance(value, _ATTRIBUTE_TYPES[spec.type])


def _check_attributes(control: ControlSpec, result: Any, at: int, problems: list[Problem]) -> None:
    by_class = {c.name: c.attributes for c in control.classes}
    for field in _REGION_FIELDS:
        for j, region in enumerate(getattr(result, field, [])):
            where = (at, field, j, "attributes")
            specs = {a.name: a for a in [*control.attributes, *by_class.get(region.label, [])]}
            problems += [
                Problem(
                    f"{control.name}: unknown attribute {name!r} on class {region.label!r}",
                    control.name,
                    (*where, name),
                )
                for name in region.attributes
                if name not in specs
            ]
            for spec in specs.values():
                value = region.attributes.get(spec.name)
                if value is None:
                    message = f"{control.name}: attribute {spec.name!r} is required" if spec.required else ""
                elif not _type_ok(spec, value):
                    message = f"{control.name}: attribute {spec.name!r} must be a {spec.type.value}"
                elif spec.choices and value not in spec.choices:
                    message = f"{control.name}: attribute {spec.name!r} must be one of {spec.choices}"
                else:
                    message = ""
                if message:
                    problems.append(Problem(message, control.name, (*where, spec.name)))


MIN_AREA = 1e-12  # relative units: below this a region covers no pixel of any real media


def _polygon_area(points: list[tuple[float, float]]) -> float:
    """The shoelace area (relative units) of a closed polygon."""
    pairs = zip(points, [*points[1:], points[0]], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


def _check_geometry(control: ControlSpec, result: Any, at: int, problems: list[Problem]) -> None:
    """Refuse regions that cover nothing: zero-width or zero-height boxes, polygons with
    fewer than three distinct points or no area."""
    if isinstance(result, BBoxResult | VideoBBoxResult):
        problems += [
            Problem(
                f"{control.name}: box {i} has no area (w and h must be > 0)", control.name, (at, "boxes", i)
            )
            for i, box in enumerate(result.boxes)
            if box.w * box.h < MIN_AREA
        ]
    elif isinstance(result, PolygonResult):
        for i, polygon in enumerate(result.polygons):
            where = (at, "polygons", i)
            if len(set(polygon.points)) < 3:
                problems.append(
                    Problem(
                        f"{control.name}: polygon {i} needs at least 3 distinct points", control.name, where
                    )
                )
            elif _polygon_area(polygon.points) < MIN_AREA:
                problems.append(
                    Problem(
                        f"{control.name}: polygon {i} has no area (its points are on one line)",
                        control.name,
                        where,
                    )
                )


def validate_results(
    config: LabelConfig, results: list[Any], text_length: int | None = None
) -> list[Problem]:
    """Problems with ``results`` under ``config``; empty when they are valid.

    ``text_length`` is the length of the task's inline text, when it has one, so span
    offsets can be checked against it. Results over the annotation limits raise
    AnnotationTooLarge first (``domain.limits``): every writer of results checks here.
    """
    check_annotation(results)
    problems: list[Problem] = []
    seen: set[str] = set()
    for at, result in enumerate(results):
        control = config.control(result.control)
        if control is None:
            problems.append(Problem(f"unknown control {result.control!r}", None, (at, "control")))
            continue
        name = control.name
        if result.control in seen:
            problems.append(
                Problem(
                    f"control {name!r} appears twice; put all its regions in one result",
                    name,
                    (at, "control"),
                )
            )
        seen.add(result.control)
        if control.type != ControlType(result.type):
            problems.append(
                Problem(f"control {name!r} is {control.type.value}, not {result.type}", name, (at, "type"))
            )
            continue
        problems += [
            Problem(f"{name}: unknown class {label!r}", name, (at, *where))
            for where, label in _labels_of(result)
            if label not in control.class_names()
        ]
        problems += _check_choices(control, result, at)
        problems += _check_points_and_spans(control, result, at, text_length)
        _check_attributes(control, result, at, problems)
        _check_geometry(control, result, at, problems)
    problems += [
        Problem(f"required control {c.name!r} has no result", c.name)
        for c in config.controls
        if c.required and c.name not in seen
    ]
    return problems


def _check_choices(control: ControlSpec, result: Any, at: int) -> list[Problem]:
    """Single-choice controls with more than one label."""
    name = control.name
    if isinstance(result, ClassificationResult) and len(result.labels) > 1 and not control.multiple:
        return [
            Problem(f"{name}: single-choice classification takes exactly one label", name, (at, "labels"))
        ]
    if isinstance(result, PdfPageClassResult) and not control.multiple:
        return [
            Problem(
                f"{name}: page {p.page} takes exactly one label (the control is single-choice)",
                name,
                (at, "pages", i, "labels"),
            )
            for i, p in enumerate(result.pages)
            if len(p.labels) > 1
        ]
    return []


def _check_points_and_spans(
    control: ControlSpec, result: Any, at: int, text_length: int | None
) -> list[Problem]:
    """Keypoints outside the skeleton, spans past the end of the text."""
    name = control.name
    if isinstance(result, KeypointResult) and control.keypoint_names:
        skeleton = set(control.keypoint_names)
        return [
            Problem(
                f"{name}: keypoint {point.name!r} is not in the skeleton {sorted(skeleton)}",
                name,
                (at, "instances", j, "points", k, "name"),
            )
            for j, instance in enumerate(result.instances)
            for k, point in enumerate(instance.points)
            if point.name not in skeleton
        ]
    if isinstance(result, NerResult) and text_length is not None:
        return [
            Problem(
                f"{name}: span {s.start}-{s.end} is outside the text (length {text_length})",
                name,
                (at, "spans", j),
            )
            for j, s in enumerate(result.spans)
            if s.end > text_length
        ]
    return []
