"""Roles in the UI: an annotator sees no admin page and no project they are not a member of, in
the navigation or by typing URLs; the API refuses the same things on its own; an admin sees the
user directory."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_project, missing_keys, new_project, shot, sign_in
from tests.e2e.conftest import DevStack, demo_token, http

CLASSIFY = [{"name": "kind", "type": "classification", "classes": [{"name": "a"}]}]


@pytest.fixture(scope="module")
def foreign_project(web_stack: DevStack) -> str:
    """A project the demo annotator is not a member of."""
    return new_project(web_stack, "Closed", ["text"], CLASSIFY, [{"text": "secret"}], members=("reviewer",))


def test_an_annotator_sees_no_admin_page_and_no_other_project(
    web_stack: DevStack, page: Page, foreign_project: str
) -> None:
    demo = demo_project(web_stack, demo_token(web_stack, "manager"))["project_id"]
    sign_in(page, web_stack, "annotator", "/")

    # The navigation offers neither the users page nor a new project, nor the foreign project
    expect(page.get_by_test_id("project-card").first).to_be_visible()
    assert page.locator("a[href='/admin/users']").count() == 0
    assert page.locator("a[href='/projects/new']").count() == 0
    shown = {c.get_attribute("data-project-id") for c in page.get_by_test_id("project-card").all()}
    assert demo in shown and foreign_project not in shown

    # In a project of theirs: labelling, but no manager's pages
    page.goto(f"{web_stack.api_url}/projects/{demo}")
    expect(page.get_by_test_id("nav-label")).to_be_visible()
    for hidden in ("settings", "upload", "export"):
        assert page.get_by_test_id(f"nav-{hidden}").count() == 0, hidden

    # Typing the URLs shows the "not allowed" page
    for path in (
        "/admin/users",
        "/projects/new",
        f"/projects/{foreign_project}",
        f"/projects/{foreign_project}/tasks",
        f"/projects/{foreign_project}/label",
        f"/projects/{demo}/settings",
        f"/projects/{demo}/upload",
        f"/projects/{demo}/export",
    ):
        page.goto(web_stack.api_url + path)
        expect(page.get_by_test_id("not-allowed")).to_be_visible()
        assert page.get_by_test_id("nav-label").count() == 0 or foreign_project not in path
    shot(page, "not-allowed")
    assert missing_keys(page) == []

    # And the API refuses them itself, whatever the UI shows
    annotator = demo_token(web_stack, "annotator")
    for method, path in (
        ("GET", f"/projects/{foreign_project}"),
        ("GET", f"/projects/{foreign_project}/tasks"),
        ("POST", f"/projects/{foreign_project}/next"),
        ("GET", "/users"),
        ("PATCH", f"/projects/{demo}"),
    ):
        status, body = http(web_stack, method, path, annotator, {} if method == "PATCH" else None)
        assert status in (403, 404), (method, path, status, body)
        assert body["error"]["code"] in ("forbidden", "not_found"), body


def test_an_admin_sees_the_user_directory(web_stack: DevStack, page: Page) -> None:
    sign_in(page, web_stack, "admin", "/")
    page.locator("a[href='/admin/users']").click()
    expect(page.get_by_test_id("user-row").first).to_be_visible()
    emails = page.get_by_test_id("users").inner_text()
    assert "annotator@serval.local" in emails and "manager@serval.local" in emails
    page.get_by_test_id("users-search").fill("review")
    page.get_by_test_id("users-search").press("Enter")
    expect(page.get_by_test_id("user-row")).to_have_count(1)
    shot(page, "users")
    assert missing_keys(page) == []
