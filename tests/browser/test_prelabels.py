"""Pre-labels and the API's refusals on the labelling page: a model's predictions show as
pre-labels, marked with their confidence, and the annotator accepts, edits or deletes them; a
422 about one region (a required attribute left unset) is shown on that region, and once the
attribute is set the task goes through."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import annotations_of, missing_keys, new_project, shot, sign_in
from tests.browser.test_text_ner import _select
from tests.e2e.conftest import DevStack, demo_token, http, wait_for

TEXT = "Ada Lovelace met Charles Babbage in London."


def _span(label: str, target: str, score: float | None = None) -> dict[str, object]:
    start = TEXT.index(target)
    span: dict[str, object] = {"label": label, "start": start, "end": start + len(target)}
    if score is not None:
        span["score"] = score
    return span


def test_predictions_are_prelabels_to_accept_edit_or_delete(web_stack: DevStack, page: Page) -> None:
    # Given a task with a model's prediction of three spans, below the auto-accept confidence
    ner = [{"name": "entities", "type": "ner", "classes": [{"name": "PER"}, {"name": "LOC"}]}]
    pid = new_project(web_stack, "Prelabels", ["text"], ner, [], members=("annotator",))
    prediction = {
        "model_version": "ner-v1",
        "score": 0.6,
        "results": [
            {
                "control": "entities",
                "type": "ner",
                "spans": [
                    _span("PER", "Ada Lovelace", 0.7),
                    _span("LOC", "Charles Babbage", 0.4),
                    _span("LOC", "London"),
                ],
            }
        ],
    }
    manager = demo_token(web_stack, "manager")
    status, created = http(
        web_stack,
        "POST",
        f"/projects/{pid}/tasks",
        manager,
        [{"data": {"text": TEXT}, "predictions": [prediction]}],
    )
    assert status in (200, 201), created

    def queued() -> bool:
        status, stats = http(web_stack, "GET", f"/projects/{pid}/stats", manager)
        return status == 200 and stats["by_status"].get("queued", 0) == 1

    wait_for(queued, timeout_s=120, what="the predicted task in the queue")

    # When the annotator opens it
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    expect(page.get_by_test_id("text-workspace")).to_be_visible(timeout=60_000)
    regions = page.get_by_test_id("region")
    expect(regions).to_have_count(3)

    # Then each span is a pre-label with its confidence (the prediction's, where the span has none)
    expect(page.locator("[data-testid=region][data-prelabel=true]")).to_have_count(3)
    expect(regions.nth(0).get_by_test_id("prelabel")).to_contain_text("70")
    expect(regions.nth(2).get_by_test_id("prelabel")).to_contain_text("60")
    shot(page, "labeling-prelabels")

    # When one is accepted, one edited (PER, not LOC) and one deleted
    regions.nth(0).get_by_test_id("accept-prelabel").click()
    regions.nth(1).locator("select").first.select_option("PER")
    regions.nth(2).get_by_test_id("delete-region").click()
    expect(regions).to_have_count(2)
    expect(page.locator("[data-testid=region][data-prelabel=true]")).to_have_count(0)
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id") or ""
    page.get_by_test_id("submit").click()

    # Then the annotation has the two spans, both the annotator's (no score), the edit applied
    (annotation,) = annotations_of(web_stack, pid, task_id)
    (result,) = annotation["results"]
    spans = sorted((s["label"], TEXT[s["start"] : s["end"]], s.get("score")) for s in result["spans"])
    assert spans == [("PER", "Ada Lovelace", None), ("PER", "Charles Babbage", None)]
    assert annotation["source"] == "human"
    assert missing_keys(page) == []


def test_a_422_about_a_region_is_shown_on_that_region(web_stack: DevStack, page: Page) -> None:
    # Given a NER control whose spans need a "certainty" attribute
    ner = [
        {
            "name": "entities",
            "type": "ner",
            "classes": [{"name": "PER"}, {"name": "LOC"}],
            "attributes": [
                {"name": "certainty", "type": "choice", "choices": ["low", "high"], "required": True}
            ],
        }
    ]
    pid = new_project(web_stack, "Attributes", ["text"], ner, [{"text": TEXT}], members=("annotator",))
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    expect(page.get_by_test_id("text-workspace")).to_be_visible()
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id") or ""

    # When a span is labelled and submitted without it
    _select(page, "London")
    region = page.get_by_test_id("region")
    expect(region).to_have_count(1)
    page.keyboard.press("2")
    expect(region).to_have_attribute("data-label", "LOC")
    page.get_by_test_id("submit").click()

    # Then the API's problem is shown on the span, and the work stays
    expect(region.get_by_test_id("region-error")).to_contain_text("certainty")
    expect(page.get_by_test_id("labeling")).to_have_attribute("data-task-id", task_id)
    shot(page, "labeling-region-error")

    # When the attribute is set / Then the task goes through, with it
    region.get_by_test_id("attribute-certainty").select_option("high")
    page.get_by_test_id("submit").click()
    (annotation,) = annotations_of(web_stack, pid, task_id)
    (span,) = annotation["results"][0]["spans"]
    assert TEXT[span["start"] : span["end"]] == "London"
    assert span["label"] == "LOC" and span["attributes"] == {"certainty": "high"}
    assert missing_keys(page) == []
