"""The labelling page keeps the work: a reload restores unsaved regions, and a lease that
expires (and is taken by someone else) is reported while the regions stay."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser.conftest import LEASE_SECONDS, demo_project, new_project, shot, sign_in
from tests.browser.test_flow import draw_box
from tests.e2e.conftest import DevStack, demo_token, http


def test_a_reload_restores_the_unsaved_regions(web_stack: DevStack, page: Page) -> None:
    pid = demo_project(web_stack, demo_token(web_stack, "manager"))["project_id"]
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    expect(page.get_by_test_id("image-workspace")).to_have_attribute("data-ready", "true")
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id")
    draw_box(page, 0.1, 0.1, 0.3, 0.4)
    page.keyboard.press("3")
    expect(page.get_by_test_id("region")).to_have_attribute("data-label", "triangle")
    page.reload()
    expect(page.get_by_test_id("image-workspace")).to_have_attribute("data-ready", "true")
    # the same task, still leased by this tab, with the box it had
    expect(page.get_by_test_id("labeling")).to_have_attribute("data-task-id", task_id or "")
    expect(page.get_by_test_id("draft-restored")).to_be_visible()
    expect(page.get_by_test_id("region")).to_have_count(1)
    expect(page.get_by_test_id("region")).to_have_attribute("data-label", "triangle")
    shot(page, "labeling-restored")
    page.get_by_test_id("release").click()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()


def test_a_lost_lease_is_reported_and_the_work_is_kept(web_stack: DevStack, page: Page) -> None:
    """The page's clock stops (as a laptop that sleeps): no heartbeat extends the lease, which
    expires for real, and another user leases the task. When the page wakes up, it says the
    lease is lost, and the span drawn before is still there (and in the browser's storage)."""
    text = "Serval keeps unsaved work."
    pid = new_project(
        web_stack,
        "Lease loss",
        ["text"],
        [{"name": "entities", "type": "ner", "source": "text", "classes": [{"name": "THING"}]}],
        [{"text": {"kind": "text", "text": text}}],
    )
    page.clock.install()
    sign_in(page, web_stack, "annotator", f"/projects/{pid}/label")
    expect(page.get_by_test_id("text-workspace")).to_be_visible()
    task_id = page.get_by_test_id("labeling").get_attribute("data-task-id")
    from tests.browser.test_text_ner import _select

    _select(page, "Serval")
    expect(page.get_by_test_id("region")).to_have_count(1)
    page.clock.pause_at(int(time.time() * 1000) + 1000)  # the page sleeps: no heartbeats
    time.sleep(LEASE_SECONDS + 3)
    status, taken = http(web_stack, "POST", f"/projects/{pid}/next", demo_token(web_stack, "manager"))
    assert status == 200 and taken["task"]["task_id"] == task_id, taken
    page.clock.resume()
    page.evaluate("window.dispatchEvent(new Event('focus'))")  # the page wakes up
    expect(page.get_by_test_id("lease-lost")).to_be_visible()
    expect(page.get_by_test_id("region")).to_have_count(1)
    expect(page.get_by_test_id("submit")).to_be_disabled()
    stored = page.evaluate(f"localStorage.getItem('serval.wip.{pid}.{task_id}')")
    assert stored and '"start":0' in stored and '"end":6' in stored, stored
    shot(page, "labeling-lease-lost")
