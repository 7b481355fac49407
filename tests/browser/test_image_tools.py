"""The image workspace's tools in the browser: a polygon drawn point by point, keypoints placed
by clicks, and a box drawn while zoomed in, all stored in 0..1 of the image."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import annotations_of, new_project, shapes, shot, sign_in
from tests.browser.test_flow import draw_box
from tests.e2e.conftest import DevStack

CONTROLS = [
    {"name": "outline", "type": "polygon", "classes": [{"name": "blob", "hotkey": "b"}]},
    {
        "name": "corners",
        "type": "keypoint",
        "keypoint_names": ["top", "bottom"],
        "classes": [{"name": "pair"}],
    },
    {"name": "frame", "type": "bbox", "classes": [{"name": "thing"}, {"name": "other"}]},
]


def click_at(page: Page, x: float, y: float, double: bool = False) -> None:
    box = page.get_by_test_id("task-image").bounding_box()
    assert box is not None
    at = (box["x"] + x * box["width"], box["y"] + y * box["height"])
    if double:
        page.mouse.dblclick(*at)
    else:
        page.mouse.click(*at)


def test_polygon_keypoints_and_a_zoomed_box(web_stack: DevStack, page: Page) -> None:
    pid = new_project(web_stack, "Image tools", ["image"], CONTROLS, [], media=shapes(1))
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    expect(page.get_by_test_id("image-workspace")).to_have_attribute("data-ready", "true")
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id")

    # a polygon, point by point (click mode); a double click closes it
    page.get_by_test_id("tool-outline").click()
    for x, y in ((0.1, 0.1), (0.4, 0.1), (0.4, 0.4)):
        click_at(page, x, y)
        page.wait_for_timeout(100)
    click_at(page, 0.1, 0.4, double=True)
    expect(page.locator("[data-testid=region][data-control=outline]")).to_have_count(1)

    # two keypoints of one instance
    page.get_by_test_id("tool-corners").click()
    click_at(page, 0.5, 0.2)
    click_at(page, 0.5, 0.8)
    expect(page.locator("[data-testid=region][data-control=corners]")).to_have_count(1)

    # zoomed in to 200 %, a box, then its class by hotkey
    page.get_by_test_id("tool-frame").click()
    page.get_by_test_id("zoom-in").click()
    page.get_by_test_id("zoom-in").click()
    expect(page.get_by_test_id("zoom")).to_have_text("200%")
    page.get_by_test_id("task-image").evaluate("img => img.closest('.stage').scrollTo(0, 0)")
    draw_box(page, 0.05, 0.05, 0.2, 0.15)  # of the zoomed image: the stage shows its top-left part
    expect(page.locator("[data-testid=region][data-control=frame]")).to_have_count(1)
    page.keyboard.press("2")
    expect(page.locator("[data-testid=region][data-control=frame]")).to_have_attribute("data-label", "other")
    shot(page, "labeling-image-tools")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()

    items = annotations_of(web_stack, pid, task_id or "")
    results = {r["control"]: r for r in items[0]["results"]}
    (polygon,) = results["outline"]["polygons"]
    assert polygon["label"] == "blob"
    want = [(0.1, 0.1), (0.4, 0.1), (0.4, 0.4), (0.1, 0.4)]
    assert len(polygon["points"]) == 4
    for (x, y), (wx, wy) in zip(polygon["points"], want, strict=True):
        assert abs(x - wx) < 0.01 and abs(y - wy) < 0.01, polygon
    (pair,) = results["corners"]["instances"]
    assert [p["name"] for p in pair["points"]] == ["top", "bottom"]
    assert abs(pair["points"][0]["y"] - 0.2) < 0.01 and abs(pair["points"][1]["y"] - 0.8) < 0.01
    (frame,) = results["frame"]["boxes"]
    assert frame["label"] == "other"
    for name, value in (("x", 0.05), ("y", 0.05), ("w", 0.15), ("h", 0.1)):
        assert abs(frame[name] - value) < 0.01, (name, frame)
