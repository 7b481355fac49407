"""Review in the browser: reject with a comment (the annotator sees the comment and the
rejected spans), edit and approve, and two annotators' results side by side with their
agreement when the project has overlap 2."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import new_project, shot, sign_in
from tests.browser.test_text_ner import _select
from tests.e2e.conftest import DevStack, demo_token, http, wait_for

NER = [{"name": "entities", "type": "ner", "source": "text", "classes": [{"name": "ORG"}, {"name": "PLACE"}]}]


def label_one(page: Page, target: str, key: str = "1") -> str:
    """On the labelling page: select ``target``, give it the class of ``key``, submit."""
    expect(page.get_by_test_id("text-workspace")).to_be_visible()
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id") or ""
    _select(page, target)
    expect(page.get_by_test_id("region")).to_have_count(1)
    page.keyboard.press(key)
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("labeling").or_(page.get_by_test_id("queue-empty"))).not_to_have_attribute(
        "data-task-id", task_id
    )
    return task_id


def open_review(page: Page, task_id: str) -> None:
    """Refresh the review queue until it offers ``task_id`` (the workflow moves it there)."""

    def offered() -> bool:
        if page.get_by_test_id("review-empty").is_visible():
            page.get_by_test_id("review-refresh").click()
        return page.get_by_test_id("review").get_attribute("data-task-id", timeout=2000) == task_id

    expect(page.get_by_test_id("review").or_(page.get_by_test_id("review-empty"))).to_be_visible()
    wait_for(lambda: _quiet(offered), timeout_s=60, what=f"task {task_id} in the review queue")


def _quiet(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:  # the page is between two states
        return False


def test_reject_sends_the_comment_and_regions_back_then_edit_and_approve(
    web_stack: DevStack, page: Page, new_page: Callable[[], Page]
) -> None:
    text = "Acme opened an office in Lisbon."
    pid = new_project(web_stack, "Rework", ["text"], NER, [{"text": {"kind": "text", "text": text}}])
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    task_id = label_one(page, "Lisbon", "1")  # wrongly ORG

    reviewer = new_page()
    sign_in(reviewer, web_stack, "reviewer", f"/projects/{pid}/review")
    open_review(reviewer, task_id)
    comment = "Lisbon is a PLACE, not an ORG — añade también «Acme» 🙂"
    reviewer.get_by_test_id("review-comment").fill(comment)
    reviewer.get_by_test_id("reject").click()
    expect(reviewer.get_by_test_id("review-empty")).to_be_visible()

    # the annotator gets the task back with the comment and the rejected span
    def back() -> bool:
        if page.get_by_test_id("queue-empty").is_visible():
            page.get_by_test_id("get-next").click()
        return page.get_by_test_id("labeling").get_attribute("data-task-id", timeout=2000) == task_id

    wait_for(lambda: _quiet(back), timeout_s=60, what="the rejected task back in the annotator's queue")
    expect(page.get_by_test_id("rework-comment")).to_have_text(comment)
    expect(page.get_by_text("ORG: “Lisbon”")).to_be_visible()
    shot(page, "labeling-rework")
    region = page.get_by_test_id("region")
    expect(region).to_have_count(1)  # the rejected result is where the rework starts
    region.locator("select").select_option("PLACE")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()

    # the reviewer edits (adds Acme as ORG) and approves
    reviewer.get_by_test_id("review-refresh").click()
    open_review(reviewer, task_id)
    reviewer.get_by_test_id("edit").click()
    _select(reviewer, "Acme")
    expect(reviewer.get_by_test_id("region")).to_have_count(2)
    reviewer.get_by_test_id("approve").click()
    expect(reviewer.get_by_test_id("review-empty")).to_be_visible()

    manager = demo_token(web_stack, "manager")

    def accepted() -> list[dict[str, object]] | None:
        status, task = http(web_stack, "GET", f"/projects/{pid}/tasks/{task_id}", manager)
        if (
            status != 200
            or task["status"] not in ("approved", "exported")
            or not task["accepted_annotation_id"]
        ):
            return None
        status, annotation = http(
            web_stack,
            "GET",
            f"/projects/{pid}/tasks/{task_id}/annotations/{task['accepted_annotation_id']}",
            manager,
        )
        assert status == 200, annotation
        return list(annotation["results"][0]["spans"])

    spans = wait_for(accepted, timeout_s=60, what="the approved edit")
    assert sorted((text[s["start"] : s["end"]], s["label"]) for s in spans) == [
        ("Acme", "ORG"),
        ("Lisbon", "PLACE"),
    ]


def test_overlap_two_shows_both_results_and_their_agreement(
    web_stack: DevStack, page: Page, new_page: Callable[[], Page]
) -> None:
    text = "Globex moved to Springfield."
    pid = new_project(
        web_stack,
        "Overlap",
        ["text"],
        NER,
        [{"text": {"kind": "text", "text": text}}],
        members=("annotator", "reviewer"),
        settings={"overlap": 2},
    )
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    task_id = label_one(page, "Globex", "1")
    other = new_page()
    sign_in(other, web_stack, "manager", f"/projects/{pid}/label")
    assert label_one(other, "Springfield", "2") == task_id

    reviewer = new_page()
    sign_in(reviewer, web_stack, "reviewer", f"/projects/{pid}/review")
    open_review(reviewer, task_id)
    expect(reviewer.get_by_test_id("review-annotation")).to_have_count(2)
    expect(reviewer.get_by_test_id("agreement")).to_contain_text("0%")
    shot(reviewer, "review-side-by-side")
