"""The language switcher changes every visible string: on each page, after switching to
Spanish, every text and every accessible label outside user content is a string of the Spanish
catalogue (its placeholders filled), so a hard-coded or untranslated string fails the test.

User content (names, ids, e-mails, task text) is marked ``translate="no"``, the HTML attribute for
"not to be translated"; locale-formatted values (dates, numbers, sizes) are in ``<time>`` or
``<data>``; code and JSON in ``<code>``/``<pre>``. Everything else must come from the catalogue.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_project, missing_keys, new_project, shot, sign_in
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, demo_token, http

LOCALES = ROOT / "frontend" / "src" / "locales"

# Every visible text node and accessible label the user reads, outside user content.
VISIBLE_STRINGS = """() => {
  const skip = "[translate=no], time, data, code, pre, script, style, svg, .visually-hidden-data";
  const seen = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest(skip)) continue;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (!/\\p{L}/u.test(text)) continue;
    if (el.tagName === "OPTION" ? !shown(el.closest("select")) : !shown(el)) continue;
    seen.push(text);
  }
  for (const el of document.body.querySelectorAll("[placeholder], [aria-label], [title]")) {
    if (el.closest(skip) || !shown(el)) continue;
    for (const name of ["placeholder", "aria-label", "title"]) {
      const value = (el.getAttribute(name) || "").trim();
      if (/\\p{L}/u.test(value)) seen.push(value);
    }
  }
  return seen;
}"""


# Words Spanish writes as English does (a name, a loanword, a unit, a bare placeholder)
SAME_IN_BOTH = {"app.name", "mediaTypes.audio", "uploads.rate", "review.by", "projectForm.controls.untitled"}
SAME_PREFIXES = ("languageName.", "exports.formats.")


def _leaves(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    return [tree] if isinstance(tree, str) else []


def catalogue(language: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for file in sorted((LOCALES / language).glob("*.json")):
        merged |= json.loads(file.read_text(encoding="utf-8"))
    return merged


@cache
def patterns(language: str) -> list[re.Pattern[str]]:
    """Each catalogue string as a pattern: its placeholders match any text, none included (an
    optional part such as the "+" of "{{n}}{{more}} tasks loaded" is empty when there is no more)."""
    out = []
    for leaf in _leaves(catalogue(language)):
        parts = re.split(r"\{\{\s*[\w.]+\s*\}\}", re.sub(r"\s+", " ", leaf).strip())
        out.append(re.compile(".*?".join(re.escape(p) for p in parts), re.DOTALL))
    return out


def _in_catalogue(text: str, language: str) -> bool:
    return any(p.fullmatch(text) for p in patterns(language))


def foreign_strings(page: Page, language: str) -> list[str]:
    """The page's visible strings that are not its language's catalogue strings."""
    return sorted({s for s in page.evaluate(VISIBLE_STRINGS) if not _in_catalogue(s, language)})


def switch_to_spanish(page: Page) -> None:
    page.get_by_test_id("language").select_option("es")
    expect(page.locator("html")).to_have_attribute("lang", "es")


def check_page(page: Page, name: str) -> None:
    """In English then in Spanish, every visible string is the catalogue's."""
    found = foreign_strings(page, "en")
    assert found == [], f"{name}: {found}"
    switch_to_spanish(page)
    page.wait_for_timeout(300)  # let lazy strings (relative times, counters) re-render
    found = foreign_strings(page, "es")
    assert found == [], f"{name} (es): {found}"
    assert missing_keys(page) == [], name
    shot(page, f"{name}-es")
    page.get_by_test_id("language").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_both_catalogues_have_the_same_keys() -> None:
    def keys(tree: Any, prefix: str = "") -> set[str]:
        if not isinstance(tree, dict):
            return {prefix}
        return {
            k for name, value in tree.items() for k in keys(value, f"{prefix}.{name}" if prefix else name)
        }

    english, spanish = keys(catalogue("en")), keys(catalogue("es"))
    assert english - spanish == set(), "keys missing in es"
    assert spanish - english == set(), "keys missing in en"
    same = sorted(
        k
        for k, en, es in ((k, _lookup(catalogue("en"), k), _lookup(catalogue("es"), k)) for k in english)
        if en == es
        and re.search(r"[a-z]{4}", en)
        and k not in SAME_IN_BOTH
        and not k.startswith(SAME_PREFIXES)
    )
    assert same == [], f"left in English in es: {same}"


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.fixture(scope="module")
def image_project(web_stack: DevStack) -> str:
    from tests.browser.conftest import shapes

    controls = [{"name": "shape", "type": "bbox", "classes": [{"name": "square"}, {"name": "circle"}]}]
    return new_project(web_stack, "Idiomas", ["image"], controls, [], media=shapes(3))


@pytest.mark.parametrize(
    ("name", "role", "path"),
    [
        ("projects", "manager", "/"),
        ("dashboard", "manager", "/projects/{pid}"),
        ("tasks", "manager", "/projects/{pid}/tasks"),
        ("upload", "manager", "/projects/{pid}/upload"),
        ("export", "manager", "/projects/{pid}/export"),
        ("settings", "manager", "/projects/{pid}/settings"),
        ("new-project", "manager", "/projects/new"),
        ("labeling", "annotator", "/projects/{pid}/label"),
        ("users", "admin", "/admin/users"),
        ("not-allowed", "annotator", "/admin/users"),
    ],
)
def test_every_visible_string_is_translated(
    web_stack: DevStack, page: Page, image_project: str, name: str, role: str, path: str
) -> None:
    sign_in(page, web_stack, role, path.format(pid=image_project))
    ready = {
        "projects": "project-card",
        "dashboard": "stat-tasks",
        "tasks": "task-row",
        "upload": "dropzone",
        "export": "export-start",
        "settings": "project-form",
        "new-project": "project-form",
        "labeling": "image-workspace",
        "users": "user-row",
        "not-allowed": "not-allowed",
    }[name]
    expect(page.get_by_test_id(ready).first).to_be_visible()
    check_page(page, name)
    if name == "labeling":
        page.get_by_test_id("release").click()


def test_the_task_detail_is_translated(web_stack: DevStack, page: Page, image_project: str) -> None:
    manager = demo_token(web_stack, "manager")
    status, listing = http(web_stack, "GET", f"/projects/{image_project}/tasks?limit=1", manager)
    assert status == 200, listing
    task_id = listing["items"][0]["task_id"]
    sign_in(page, web_stack, "manager", f"/projects/{image_project}/tasks/{task_id}")
    expect(page.get_by_test_id("history-row").first).to_be_visible()
    check_page(page, "task-detail")


def test_the_review_page_is_translated(web_stack: DevStack, page: Page) -> None:
    pid = demo_project(web_stack, demo_token(web_stack, "manager"))["project_id"]
    sign_in(page, web_stack, "reviewer", f"/projects/{pid}/review")
    expect(page.get_by_test_id("review").or_(page.get_by_test_id("review-empty"))).to_be_visible()
    check_page(page, "review")
