"""Browser tests: the built web app in Debian's headless Chromium (Playwright, the Python
binding of playwright-core), against the local stack started as `make dev` starts it.

One stack and one browser serve every module here (they are one xdist work unit); each test
opens its own browser context, so cookies, sessionStorage and localStorage never leak between
tests. Screenshots of each page go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from infra.local.seed import DEMO_USERS, DemoUser
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, http, start_dev_stack

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DIST = ROOT / "frontend" / "dist" / "index.html"
expect.set_options(timeout=20_000)


def chromium_path() -> str:
    found = os.environ.get("SERVAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("the browser tests need Debian's Chromium: apt-get install -y chromium")
    return found


@pytest.fixture(scope="package")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The local stack serving the built app (``frontend/dist``) at its gateway's URL."""
    if not DIST.is_file():
        pytest.fail("frontend/dist is not built: make setup builds it (npm ci && npm run build)")
    stack = start_dev_stack(tmp_path_factory.mktemp("serval-web"))
    yield stack
    stack.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"], headless=True)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"


def demo_user(role: str) -> DemoUser:
    return next(u for u in DEMO_USERS if u.label == role)


def sign_in(page: Page, stack: DevStack, role: str, path: str = "/", password: str | None = None) -> None:
    """Open ``path`` and sign in on the login page as the demo user with ``role``."""
    user = demo_user(role)
    page.goto(stack.api_url + path)
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    page.fill("#email", user.email)
    page.fill("#password", password or user.password)
    page.click("button[type=submit]")
    if password is None:
        expect(page.get_by_test_id("who")).to_contain_text(user.email)


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/screenshots/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


def missing_keys(page: Page) -> list[str]:
    """The i18n keys the page asked for that its language's catalogue does not have."""
    return list(page.evaluate("window.__servalMissingKeys ?? []"))


def demo_project(stack: DevStack, token: str) -> dict[str, Any]:
    status, body = http(stack, "GET", "/projects?limit=100", token)
    assert status == 200, body
    return next(p for p in body["items"] if p["name"].startswith("Demo"))
