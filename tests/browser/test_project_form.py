"""The project form: a manager creates a project with a bbox control and lands on its
dashboard, the form's own checks stop a bad request before it is sent, the API's 422 shows at
the field it concerns, and the settings page changes only what the manager changed."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.conftest import missing_keys, new_project, shot, sign_in
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, demo_token, http

CATALOGUE = json.loads((ROOT / "frontend/src/locales/en/projectForm.json").read_text())["projectForm"]
OPENAPI = json.loads((ROOT / "docs/openapi.json").read_text())["components"]["schemas"]


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def field(page: Page | Locator, test_id: str) -> Locator:
    """The labelled field (input, hint and problems) around the input ``test_id``."""
    return page.locator(".pf-field").filter(has=page.get_by_test_id(test_id))


def writes(page: Page) -> list[Request]:
    """The POST and PATCH requests the page sends to /projects from now on."""
    sent: list[Request] = []
    page.on(
        "request",
        lambda r: sent.append(r) if r.method in ("POST", "PATCH") and "/projects" in r.url else None,
    )
    return sent


def add_control(page: Page, name: str, control_type: str) -> Locator:
    page.get_by_test_id("pf-add-control").click()
    control = page.get_by_test_id("control").last
    control.get_by_test_id("control-name").fill(name)
    control.get_by_test_id("control-type").select_option(control_type)
    return control


def add_class(control: Locator, name: str, color: str | None = None, hotkey: str | None = None) -> None:
    control.get_by_test_id("add-class").click()
    row = control.get_by_test_id("class").last
    row.get_by_test_id("class-name").fill(name)
    if color:
        row.get_by_test_id("class-color").fill(color)
    if hotkey:
        row.get_by_test_id("class-hotkey").fill(hotkey)


def test_a_manager_creates_a_project_and_lands_on_its_dashboard(web_stack: DevStack, page: Page) -> None:
    # Given a manager on the new project page
    sign_in(page, web_stack, "manager", "/projects/new")
    expect(page.get_by_test_id("project-form")).to_be_visible()
    # the workflow settings start at the API's defaults
    defaults: dict[str, Any] = {
        key: spec["default"] for key, spec in OPENAPI["ProjectSettings"]["properties"].items()
    }
    for key, default in defaults.items():
        setting = page.get_by_test_id(f"pf-setting-{key}")
        if isinstance(default, bool):
            expect(setting).to_be_checked(checked=default)
        elif isinstance(default, str):
            expect(setting).to_have_value(default)
        else:
            assert float(setting.input_value()) == default, key

    # When they fill the name, pick image, add a bbox control with two classes and save
    name = unique("Form shapes")
    page.get_by_test_id("pf-name").fill(name)
    page.get_by_test_id("pf-description").fill("Boxes around shapes")
    page.get_by_test_id("pf-media-image").check()
    control = add_control(page, "shapes", "bbox")
    add_class(control, "circle", "#ff0000", "1")
    add_class(control, "square", "#0000ff", "2")
    shot(page, "project-form")
    page.get_by_test_id("pf-save").click()

    # Then they land on the new project's dashboard
    page.wait_for_url(re.compile(r"/projects/[^/]+$"))
    expect(page.get_by_test_id("dashboard")).to_be_visible()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    pid = page.url.rstrip("/").rsplit("/", 1)[-1]
    # and the API has the project exactly as entered
    status, project = http(web_stack, "GET", f"/projects/{pid}", demo_token(web_stack, "manager"))
    assert status == 200, project
    assert project["name"] == name
    assert project["description"] == "Boxes around shapes"
    assert project["media_types"] == ["image"]
    assert project["settings"] == defaults
    assert project["label_config"] == {
        "version": 1,
        "instructions": "",
        "controls": [
            {
                "name": "shapes",
                "type": "bbox",
                "source": None,
                "multiple": False,
                "classes": [
                    {"name": "circle", "color": "#ff0000", "hotkey": "1", "attributes": []},
                    {"name": "square", "color": "#0000ff", "hotkey": "2", "attributes": []},
                ],
                "attributes": [],
                "required": False,
                "keypoint_names": [],
            }
        ],
    }
    assert missing_keys(page) == []


def test_the_form_checks_its_fields_before_sending(web_stack: DevStack, page: Page) -> None:
    # Given a new project with no name and a control that has the same class twice
    sign_in(page, web_stack, "manager", "/projects/new")
    sent = writes(page)
    page.get_by_test_id("pf-media-image").check()
    control = add_control(page, "shapes", "bbox")
    add_class(control, "circle")
    add_class(control, "circle")

    # When the manager saves
    page.get_by_test_id("pf-save").click()

    # Then the name and both copies of the class say what is wrong, and nothing is sent
    expect(field(page, "pf-name").get_by_test_id("field-error")).to_have_text(
        CATALOGUE["errors"]["nameRequired"]
    )
    expect(page.get_by_test_id("pf-name")).to_have_attribute("aria-invalid", "true")
    duplicate = CATALOGUE["errors"]["duplicateClass"].replace("{{name}}", "circle")
    expect(control.get_by_test_id("field-error")).to_have_text([duplicate, duplicate])
    # a name outside the pattern is refused too, as it is typed
    page.get_by_test_id("pf-name").fill("shapes/2024")
    expect(field(page, "pf-name").get_by_test_id("field-error")).to_have_text(
        CATALOGUE["errors"]["namePattern"]
    )
    # and fixing a field clears its problem
    control.get_by_test_id("class-name").last.fill("square")
    expect(control.get_by_test_id("field-error")).to_have_count(0)
    page.get_by_test_id("pf-save").click()
    expect(field(page, "pf-name").get_by_test_id("field-error")).to_be_visible()
    assert sent == []
    assert missing_keys(page) == []


def test_an_api_refusal_is_shown_at_the_control_it_concerns(web_stack: DevStack, page: Page) -> None:
    # Given a bbox control without classes (the form lets it through; the API refuses it)
    sign_in(page, web_stack, "manager", "/projects/new")
    sent = writes(page)
    page.get_by_test_id("pf-name").fill(unique("Form refused"))
    page.get_by_test_id("pf-media-image").check()
    control = add_control(page, "boxes", "bbox")

    # When the manager saves
    page.get_by_test_id("pf-save").click()

    # Then the API's message shows inside the control's box, and the page stays
    expect(control.get_by_test_id("field-error")).to_contain_text("needs at least one class")
    expect(page.locator("[data-error-code=validation_failed]")).to_be_visible()
    assert len(sent) == 1 and sent[0].method == "POST"
    assert page.url.endswith("/projects/new")
    assert missing_keys(page) == []


def test_the_settings_page_changes_only_what_changed(web_stack: DevStack, page: Page) -> None:
    # Given a project made through the API
    controls = [{"name": "shapes", "type": "bbox", "classes": [{"name": "circle"}, {"name": "square"}]}]
    pid = new_project(web_stack, unique("Form edit"), ["image"], controls, [], members=())
    manager = demo_token(web_stack, "manager")
    _, before = http(web_stack, "GET", f"/projects/{pid}", manager)
    sign_in(page, web_stack, "manager", f"/projects/{pid}/settings")
    expect(page.get_by_test_id("pf-name")).to_have_value(before["name"])
    expect(page.get_by_test_id("control")).to_have_count(1)
    expect(page.get_by_test_id("class-name")).to_have_count(2)
    sent = writes(page)

    # When the manager changes the description and saves
    page.get_by_test_id("pf-description").fill("Now with a description")
    page.get_by_test_id("pf-save").click()

    # Then the page says so, only the description was sent, and the API shows it
    expect(page.get_by_test_id("pf-notice")).to_have_attribute("data-notice", "saved")
    assert [(r.method, r.post_data_json) for r in sent] == [
        ("PATCH", {"description": "Now with a description"})
    ]
    status, after = http(web_stack, "GET", f"/projects/{pid}", manager)
    assert status == 200, after
    assert after["description"] == "Now with a description"
    assert after["label_config"] == before["label_config"]
    assert after["settings"] == before["settings"]
    # saving again without a change sends nothing
    page.get_by_test_id("pf-save").click()
    expect(page.get_by_test_id("pf-notice")).to_have_attribute("data-notice", "unchanged")
    assert len(sent) == 1
    assert missing_keys(page) == []
