"""Inter-annotator agreement of one task, and the score of an answer against known (gold) results.

Pure: it takes normalized results (``serval.domain.results``), one list per annotator, and
returns a number in 0..1. Per control:

* classification: the share of annotators whose label set equals the majority label set
  (label sets compare exactly, order ignored; a tie picks any of the largest groups, which
  gives the same share);
* bbox: for each pair of annotators, boxes are matched greedily by descending IoU, a match
  needing IoU >= 0.5 and an equal label; the pair scores the F1 of the matches
  (``2 * matches / (boxes_a + boxes_b)``); the control scores the mean over pairs. Rotation is
  ignored (axis-aligned IoU);
* ner: for each pair, the F1 of spans equal in start, end and label; mean over pairs;
* any other type: for each pair, 1 when the normalized results are equal, else 0; mean over pairs.

An annotator without a result for a control counts as an empty one (no labels, no regions).
Two empty results agree (1.0). The task's agreement is the mean over the controls that appear
in any annotation; no controls at all (or fewer than two annotators) is full agreement.

:func:`score` compares one answer with a reference (gold) using the pair scores for every type,
so a wrong class scores 0 (not the 0.5 a majority of two would give).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from serval.domain.results import BBoxResult, Box, ClassificationResult, NerResult

IOU_MATCH = 0.5


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two axis-aligned boxes (relative coordinates)."""
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _f1(matches: int, size_a: int, size_b: int) -> float:
    if size_a + size_b == 0:
        return 1.0
    return 2 * matches / (size_a + size_b)


def box_f1(a: Sequence[Box], b: Sequence[Box], threshold: float = IOU_MATCH) -> float:
    """F1 of greedily IoU-matched boxes with equal labels (each box matched at most once)."""
    pairs = sorted(
        ((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b) if x.label == y.label),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    for value, i, j in pairs:
        if value < threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
    return _f1(len(used_a), len(a), len(b))


def span_f1(a: Sequence[Any], b: Sequence[Any]) -> float:
    """F1 of spans equal in start, end and label (duplicates count once)."""
    set_a = {(s.start, s.end, s.label) for s in a}
    set_b = {(s.start, s.end, s.label) for s in b}
    return _f1(len(set_a & set_b), len(set_a), len(set_b))


def _label_set(result: Any) -> frozenset[str]:
    return frozenset(result.labels) if isinstance(result, ClassificationResult) else frozenset()


def _comparable(result: Any) -> Any:
    return None if result is None else result.model_dump(mode="json", exclude={"control"})


def pair_score(a: Any, b: Any) -> float:
    """Agreement of two results of one control (either may be None: no result)."""
    kind = a if a is not None else b
    if kind is None:
        return 1.0
    if isinstance(kind, ClassificationResult):
        return 1.0 if _label_set(a) == _label_set(b) else 0.0
    if isinstance(kind, BBoxResult):
        return box_f1(a.boxes if a is not None else [], b.boxes if b is not None else [])
    if isinstance(kind, NerResult):
        return span_f1(a.spans if a is not None else [], b.spans if b is not None else [])
    return 1.0 if _comparable(a) == _comparable(b) else 0.0


def control_agreement(results: Sequence[Any]) -> float:
    """Agreement of one control's results, one per annotator (None: the annotator gave none)."""
    if len(results) < 2:
        return 1.0
    present = [r for r in results if r is not None]
    if present and isinstance(present[0], ClassificationResult):
        counts = Counter(_label_set(r) for r in results)
        return counts.most_common(1)[0][1] / len(results)
    scores = [pair_score(a, b) for a, b in combinations(results, 2)]
    return sum(scores) / len(scores)


def _by_control(results: Sequence[Any]) -> dict[str, Any]:
    return {r.control: r for r in results}


def _controls(annotations: Sequence[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for by in annotations:
        names += [name for name in by if name not in names]
    return names


def agreement(annotations: Sequence[Sequence[Any]]) -> float:
    """The task's agreement: the mean over its controls of :func:`control_agreement`."""
    if len(annotations) < 2:
        return 1.0
    indexed = [_by_control(a) for a in annotations]
    controls = _controls(indexed)
    if not controls:
        return 1.0
    per_control = [control_agreement([by.get(name) for by in indexed]) for name in controls]
    return sum(per_control) / len(per_control)


def score(reference: Sequence[Any], answer: Sequence[Any]) -> float:
    """How well ``answer`` matches ``reference`` (gold): mean over controls of :func:`pair_score`."""
    gold, given = _by_control(reference), _by_control(answer)
    controls = _controls([gold, given])
    if not controls:
        return 1.0
    return sum(pair_score(gold.get(c), given.get(c)) for c in controls) / len(controls)


def representative(annotations: Sequence[Sequence[Any]]) -> int:
    """The index of the round's answer: the annotation that agrees best with the others (mean
    :func:`score` against each other one); a tie goes to the earliest. What a round accepted by
    consensus, or approved without an edit, exports."""
    if len(annotations) < 2:
        return 0
    others = len(annotations) - 1

    def support(i: int) -> float:
        return sum(score(a, annotations[i]) for j, a in enumerate(annotations) if j != i) / others

    return max(range(len(annotations)), key=lambda i: (support(i), -i))
