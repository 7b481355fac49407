"""The task list on a 10k-task project: one page is read before the user scrolls and the next
as they scroll; the filters are the server's; "select all matching" tags exactly the tasks of
the filter through a bulk job whose progress reaches done; a task's detail shows its history."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import missing_keys, shot, sign_in
from tests.e2e.conftest import DevStack, demo_token, http

TASKS = 10_000
MARKED = 1_000  # every tenth task carries the tag "batch"


@pytest.fixture(scope="module")
def big_project(web_stack: DevStack) -> str:
    """A text project of 10,000 tasks, created through the API (1,000 per request)."""
    manager = demo_token(web_stack, "manager")
    body = {
        "name": "Ten thousand",
        "media_types": ["text"],
        "label_config": {
            "controls": [{"name": "topic", "type": "classification", "classes": [{"name": "a"}]}]
        },
    }
    status, project = http(web_stack, "POST", "/projects", manager, body)
    assert status == 201, project
    pid = str(project["project_id"])
    for start in range(0, TASKS, 1000):
        rows = [
            {
                "data": {"text": f"line {i}"},
                "external_id": f"row-{i:05d}",
                "tags": ["batch"] if i % 10 == 0 else [],
            }
            for i in range(start, start + 1000)
        ]
        status, created = http(web_stack, "POST", f"/projects/{pid}/tasks", manager, rows)
        assert status in (200, 201), created
    return pid


def _tagged(stack: DevStack, pid: str, tag: str) -> list[dict[str, Any]]:
    """Every task with ``tag``, read page by page from the API."""
    manager = demo_token(stack, "manager")
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, page = http(stack, "GET", f"/projects/{pid}/tasks?tag={tag}&limit=500{cursor}", manager)
        assert status == 200, page
        found += page["items"]
        if not page["next_cursor"]:
            return found
        cursor = f"&cursor={page['next_cursor']}"


def test_the_list_reads_one_page_then_pages_as_the_user_scrolls(
    web_stack: DevStack, page: Page, big_project: str
) -> None:
    # Given a manager opening the task list of a 10k-task project
    sign_in(page, web_stack, "manager", f"/projects/{big_project}/tasks")

    # Then rows show after one page was read, and the total comes from the counters
    expect(page.get_by_test_id("task-row").first).to_be_visible()
    scroller = page.get_by_test_id("task-scroller")
    expect(scroller).to_have_attribute("data-pages", "1")
    expect(page.get_by_test_id("task-count")).to_contain_text("10")
    assert page.get_by_test_id("task-row").count() < 100  # virtualized: only what is on screen
    shot(page, "task-list")

    # When the user scrolls to the end of what is loaded / Then exactly one more page is read
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(scroller).to_have_attribute("data-pages", "2")
    expect(page.locator("[data-testid=task-row][data-task-id]").last).to_be_visible()
    assert missing_keys(page) == []


def test_select_all_matching_a_filter_tags_exactly_those_tasks(
    web_stack: DevStack, page: Page, big_project: str
) -> None:
    # Given the list filtered by the tag of 1,000 of the 10,000 tasks
    sign_in(page, web_stack, "manager", f"/projects/{big_project}/tasks")
    page.get_by_test_id("filter-tag").fill("batch")
    page.get_by_test_id("filter-tag").press("Enter")
    expect(page).to_have_url(f"{web_stack.api_url}/projects/{big_project}/tasks?tag=batch")
    expect(page.get_by_test_id("task-row").first).to_be_visible()
    for row in page.get_by_test_id("task-row").all()[:10]:
        assert int((row.inner_text().split("row-")[1])[:5]) % 10 == 0  # the server filtered

    # When every task matching the filter is selected and tagged "checked"
    page.get_by_test_id("select-all-matching").click()
    expect(page.get_by_test_id("selected-count")).not_to_contain_text("0")
    page.get_by_test_id("bulk-action").select_option("tag")
    page.get_by_test_id("bulk-tag").fill("checked")
    page.get_by_test_id("bulk-run").click()

    # Then the job's progress reaches done with 1,000 tasks done and none failed
    status = page.get_by_test_id("bulk-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=240_000)
    expect(status).to_have_attribute("data-done", str(MARKED))
    expect(status).to_have_attribute("data-failed", "0")
    shot(page, "task-list-bulk")

    # And exactly the filter's tasks carry the new tag
    checked = _tagged(web_stack, big_project, "checked")
    assert len(checked) == MARKED
    assert all("batch" in t["tags"] for t in checked)
    assert missing_keys(page) == []


def test_a_task_detail_shows_its_data_and_its_history(
    web_stack: DevStack, page: Page, big_project: str
) -> None:
    # Given a task whose priority the manager changed
    manager = demo_token(web_stack, "manager")
    status, listing = http(web_stack, "GET", f"/projects/{big_project}/tasks?limit=1", manager)
    task_id, external_id = listing["items"][0]["task_id"], listing["items"][0]["external_id"]
    status, patched = http(
        web_stack, "PATCH", f"/projects/{big_project}/tasks/{task_id}", manager, {"priority": 7}
    )
    assert status == 200, patched

    # When its row is opened from the list
    sign_in(page, web_stack, "manager", f"/projects/{big_project}/tasks")
    page.locator(f"[data-testid=task-row][data-task-id='{task_id}'] a").click()

    # Then its data and the audit record of the change are shown
    expect(page.get_by_test_id("task-detail")).to_have_attribute("data-task-id", task_id)
    expect(page.get_by_role("heading", level=1)).to_contain_text(external_id)
    expect(page.get_by_test_id("task-data")).to_contain_text(f"line {int(external_id[4:])}")
    expect(page.get_by_test_id("history-row").first).to_be_visible()
    assert page.locator("[data-testid=history-row]").count() >= 1
    shot(page, "task-detail")
    assert missing_keys(page) == []
