"""The whole path in the browser: an annotator boxes a shape and submits, a reviewer approves,
a manager exports COCO, and the box is in the file with the right coordinates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_project, shot, sign_in
from tests.e2e.conftest import DevStack, demo_token, http, wait_for


def draw_box(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    """Drag a rectangle over the task's image, corners in 0..1 of the shown image."""
    box = page.get_by_test_id("task-image").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
    page.mouse.down()
    for step in range(1, 11):
        f = step / 10
        page.mouse.move(
            box["x"] + (x0 + f * (x1 - x0)) * box["width"], box["y"] + (y0 + f * (y1 - y0)) * box["height"]
        )
    page.mouse.up()


def test_label_review_export(web_stack: DevStack, page: Page, new_page: Callable[[], Page]) -> None:
    manager = demo_token(web_stack, "manager")
    project = demo_project(web_stack, manager)
    pid = project["project_id"]

    # the annotator: next task, a box drawn with the mouse, its class by hotkey, submit
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    workspace = page.get_by_test_id("image-workspace")
    expect(workspace).to_have_attribute("data-ready", "true")
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id")
    draw_box(page, 0.2, 0.25, 0.6, 0.75)
    expect(page.get_by_test_id("region")).to_have_count(1)
    page.keyboard.press("2")  # the second class of the box control: square
    expect(page.get_by_test_id("region")).to_have_attribute("data-label", "square")
    page.get_by_test_id("choice-shape-square").click()
    shot(page, "labeling-image")
    page.get_by_test_id("submit").click()
    # the next task shows at once (it was leased while the annotator worked)
    expect(page.get_by_test_id("labeling")).not_to_have_attribute("data-task-id", task_id or "")

    status, listed = http(web_stack, "GET", f"/projects/{pid}/tasks/{task_id}/annotations", manager)
    assert status == 200 and len(listed["items"]) == 1, listed
    results = {r["control"]: r for r in listed["items"][0]["results"]}
    assert results["shape"]["labels"] == ["square"]
    (saved,) = results["objects"]["boxes"]
    assert saved["label"] == "square"
    for name, want in (("x", 0.2), ("y", 0.25), ("w", 0.4), ("h", 0.5)):
        assert abs(saved[name] - want) < 0.01, (name, saved)

    _approve(web_stack, new_page(), pid, task_id or "")
    _export_coco(web_stack, new_page(), pid, task_id or "")


def _approve(web_stack: DevStack, reviewer: Page, pid: str, task_id: str) -> None:
    """The reviewer finds the task in the review queue and approves it."""
    manager = demo_token(web_stack, "manager")
    sign_in(reviewer, web_stack, "reviewer", f"/projects/{pid}/review")

    def reviewing() -> bool:
        if reviewer.get_by_test_id("review-empty").is_visible():
            reviewer.get_by_test_id("review-refresh").click()
            return False
        return reviewer.get_by_test_id("review").get_attribute("data-task-id") == task_id

    expect(reviewer.get_by_test_id("review").or_(reviewer.get_by_test_id("review-empty"))).to_be_visible()
    for _ in range(60):
        if reviewing():
            break
        reviewer.wait_for_timeout(500)
    expect(reviewer.get_by_test_id("review")).to_have_attribute("data-task-id", task_id or "")
    expect(reviewer.get_by_test_id("review-annotation")).to_have_count(1)
    shot(reviewer, "review")
    reviewer.get_by_test_id("approve").click()
    expect(reviewer.get_by_test_id("review").or_(reviewer.get_by_test_id("review-empty"))).to_be_visible()

    def approved() -> bool:
        code, task = http(web_stack, "GET", f"/projects/{pid}/tasks/{task_id}", manager)
        return code == 200 and task["status"] in ("approved", "exported")

    wait_for(approved, what=f"{task_id} approved")


def _export_coco(web_stack: DevStack, exporter: Page, pid: str, task_id: str) -> None:
    """The manager's COCO export, downloaded: the box is there in pixels."""
    sign_in(exporter, web_stack, "manager", f"/projects/{pid}/export")
    exporter.get_by_test_id("export-format").select_option("coco")
    exporter.get_by_test_id("export-start").click()
    expect(exporter.get_by_test_id("export-status").first).to_have_attribute(
        "data-status", "succeeded", timeout=120_000
    )
    href = exporter.get_by_test_id("export-download").first.get_attribute("href")
    assert href
    shot(exporter, "export-done")
    answer = exporter.request.get(href)
    assert answer.ok, answer.status
    coco: dict[str, Any] = json.loads(answer.body())
    image = next(i for i in coco["images"] if re.search(re.escape(task_id or "-"), json.dumps(i)))
    boxes = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
    square = next(c["id"] for c in coco["categories"] if c["name"] == "square")
    (exported,) = [a for a in boxes if a["category_id"] == square]
    want = [0.2 * image["width"], 0.25 * image["height"], 0.4 * image["width"], 0.5 * image["height"]]
    assert all(
        abs(got - w) <= 0.01 * max(image["width"], image["height"])
        for got, w in zip(exported["bbox"], want, strict=True)
    ), (
        exported,
        want,
    )
