"""Agreement between annotators and the gold score, checked against hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from serval.domain.agreement import agreement, box_f1, control_agreement, iou, score, span_f1
from serval.domain.results import Box, Result

RESULTS = TypeAdapter(list[Result])


def results(*raw: dict[str, Any]) -> list[Any]:
    return RESULTS.validate_python(list(raw))


def cls(*labels: str, control: str = "animal") -> dict[str, Any]:
    return {"control": control, "type": "classification", "labels": list(labels)}


def boxes(*raw: tuple[str, float, float, float, float]) -> dict[str, Any]:
    return {
        "control": "boxes",
        "type": "bbox",
        "boxes": [{"label": label, "x": x, "y": y, "w": w, "h": h} for label, x, y, w, h in raw],
    }


def spans(*raw: tuple[int, int, str]) -> dict[str, Any]:
    return {
        "control": "ents",
        "type": "ner",
        "spans": [{"start": s, "end": e, "label": lab} for s, e, lab in raw],
    }


def box(label: str, x: float, y: float, w: float, h: float) -> Box:
    return Box(label=label, x=x, y=y, w=w, h=h)


# ---- IoU and F1 helpers -------------------------------------------------------------------------


def test_iou_of_half_overlapping_squares_is_one_third() -> None:
    # Given two 0.2x0.2 squares overlapping on a 0.1x0.2 strip: inter 0.02, union 0.06
    assert iou(box("car", 0.0, 0.0, 0.2, 0.2), box("car", 0.1, 0.0, 0.2, 0.2)) == pytest.approx(1 / 3)


def test_iou_of_disjoint_and_identical_boxes() -> None:
    assert iou(box("car", 0.0, 0.0, 0.1, 0.1), box("car", 0.5, 0.5, 0.1, 0.1)) == 0.0
    assert iou(box("car", 0.1, 0.1, 0.3, 0.3), box("car", 0.1, 0.1, 0.3, 0.3)) == pytest.approx(1.0)


def test_box_f1_needs_iou_at_least_half_and_an_equal_label() -> None:
    a = [box("car", 0.0, 0.0, 0.2, 0.2), box("person", 0.5, 0.5, 0.2, 0.2)]
    # car shifted by 0.02: inter 0.18*0.2 = 0.036, union 0.044, IoU 0.818 (a match);
    # the person box is "car" in b: same place, another label (no match) -> F1 = 2*1/(2+2)
    b = [box("car", 0.02, 0.0, 0.2, 0.2), box("car", 0.5, 0.5, 0.2, 0.2)]
    assert box_f1(a, b) == pytest.approx(2 * 1 / 4)


def test_box_f1_below_the_iou_threshold_is_no_match() -> None:
    a = [box("car", 0.0, 0.0, 0.2, 0.2)]
    b = [box("car", 0.1, 0.0, 0.2, 0.2)]  # IoU 1/3
    assert box_f1(a, b) == 0.0


def test_box_f1_matches_each_box_once_greedily_by_iou() -> None:
    # Given a's two identical boxes and b's one: only one pair can match -> F1 = 2*1/3
    a = [box("car", 0.0, 0.0, 0.2, 0.2), box("car", 0.0, 0.0, 0.2, 0.2)]
    b = [box("car", 0.0, 0.0, 0.2, 0.2)]
    assert box_f1(a, b) == pytest.approx(2 / 3)


def test_box_f1_of_two_empty_sets_is_full_agreement() -> None:
    assert box_f1([], []) == 1.0


def test_span_f1_is_exact_on_start_end_and_label() -> None:
    a = results(spans((0, 5, "PER"), (10, 15, "ORG"), (20, 25, "LOC")))[0].spans
    b = results(spans((0, 5, "PER"), (10, 16, "ORG"), (20, 25, "PER")))[0].spans
    assert span_f1(a, b) == pytest.approx(2 * 1 / 6)


# ---- per control --------------------------------------------------------------------------------


def test_classification_is_the_share_agreeing_with_the_majority() -> None:
    # Given 3 annotators, 2 say cat: 2/3
    given = [results(cls("cat"))[0], results(cls("cat"))[0], results(cls("dog"))[0]]
    assert control_agreement(given) == pytest.approx(2 / 3)


def test_classification_label_sets_compare_exactly_ignoring_order() -> None:
    given = [
        results(cls("sport", "news", control="topics"))[0],
        results(cls("news", "sport", control="topics"))[0],
        results(cls("news", control="topics"))[0],
        results(cls("tech", control="topics"))[0],
    ]
    assert control_agreement(given) == pytest.approx(2 / 4)


def test_classification_missing_result_counts_as_an_empty_label_set() -> None:
    given = [results(cls("cat"))[0], None, None]
    assert control_agreement(given) == pytest.approx(2 / 3)


def test_other_types_agree_pairwise_on_exact_equality() -> None:
    # Given three transcriptions, two equal: pairs (a,b)=1, (a,c)=0, (b,c)=0 -> 1/3
    t = [
        results({"control": "text", "type": "transcription", "text": t})[0]
        for t in ("hello", "hello", "hullo")
    ]
    assert control_agreement(t) == pytest.approx(1 / 3)


# ---- the task -----------------------------------------------------------------------------------


def test_bbox_agreement_is_the_mean_pairwise_f1() -> None:
    # Given a and b identical (F1 1), c with one of the two boxes (F1 with a: 2/3, with b: 2/3)
    a = results(boxes(("car", 0.0, 0.0, 0.2, 0.2), ("car", 0.5, 0.5, 0.2, 0.2)))
    b = results(boxes(("car", 0.0, 0.0, 0.2, 0.2), ("car", 0.5, 0.5, 0.2, 0.2)))
    c = results(boxes(("car", 0.01, 0.0, 0.2, 0.2)))
    assert agreement([a, b, c]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_ner_agreement_is_the_mean_pairwise_span_f1() -> None:
    a = results(spans((0, 5, "PER"), (10, 15, "ORG")))
    b = results(spans((0, 5, "PER")))
    # a-b: 2*1/3 = 2/3
    assert agreement([a, b]) == pytest.approx(2 / 3)


def test_task_agreement_is_the_mean_over_controls_present() -> None:
    # Given classification agreement 1/2 (two annotators disagree) and NER agreement 1
    a = results(cls("cat"), spans((0, 5, "PER")))
    b = results(cls("dog"), spans((0, 5, "PER")))
    assert agreement([a, b]) == pytest.approx((0.5 + 1.0) / 2)


def test_a_control_only_one_annotator_used_still_counts() -> None:
    # Given b gave no NER spans: NER pair F1 is 0 (a has 1 span, b none); classification 1
    a = results(cls("cat"), spans((0, 5, "PER")))
    b = results(cls("cat"))
    assert agreement([a, b]) == pytest.approx(0.5)


def test_unanimous_annotators_agree_fully() -> None:
    a = results(cls("cat"), boxes(("car", 0.1, 0.1, 0.3, 0.3)), spans((1, 4, "LOC")))
    assert agreement([a, a, a]) == pytest.approx(1.0)


def test_fewer_than_two_annotations_or_no_controls_is_full_agreement() -> None:
    assert agreement([]) == 1.0
    assert agreement([results(cls("cat"))]) == 1.0
    assert agreement([[], []]) == 1.0


# ---- gold score ---------------------------------------------------------------------------------


def test_gold_score_of_a_wrong_class_is_zero_and_of_the_right_one_is_one() -> None:
    gold = results(cls("cat"))
    assert score(gold, results(cls("dog"))) == 0.0
    assert score(gold, results(cls("cat"))) == 1.0


def test_gold_score_averages_controls_with_pair_scores() -> None:
    gold = results(cls("cat"), boxes(("car", 0.0, 0.0, 0.2, 0.2), ("car", 0.5, 0.5, 0.2, 0.2)))
    answer = results(cls("cat"), boxes(("car", 0.0, 0.0, 0.2, 0.2)))
    assert score(gold, answer) == pytest.approx((1.0 + 2 / 3) / 2)
