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

from infra.local.datasets import datasets_dir
from infra.local.seed import DEMO_USERS, DemoUser
from infra.local.stack import local_spec
from tests.conftest import ROOT
from tests.e2e.conftest import DevStack, aws_client, demo_token, http, start_dev_stack, wait_for

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DIST = ROOT / "frontend" / "dist" / "index.html"
LEASE_SECONDS = 60
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
    # 60 s leases (heartbeats keep them), so a test can let one expire for real
    stack = start_dev_stack(
        tmp_path_factory.mktemp("serval-web"), extra=("--lease-seconds", str(LEASE_SECONDS))
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path(), args=["--no-sandbox"], headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page, errors = watched(context)
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"


def watched(context: BrowserContext) -> tuple[Page, list[str]]:
    """A new page of ``context`` and the list its uncaught errors and Content-Security-Policy
    violations go to (the gateway serves the app under CloudFront's policy)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return page, errors


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Any]:
    """Pages for more users in one test: ``new_page()`` opens each in its own context."""
    opened: list[tuple[BrowserContext, list[str]]] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        page, errors = watched(context)
        opened.append((context, errors))
        return page

    yield make
    for context, errors in opened:
        context.close()
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


def annotations_of(stack: DevStack, pid: str, task_id: str) -> list[dict[str, Any]]:
    """The task's annotations, as the demo manager reads them, once there is at least one."""
    manager = demo_token(stack, "manager")

    def listed() -> list[dict[str, Any]] | None:
        status, body = http(stack, "GET", f"/projects/{pid}/tasks/{task_id}/annotations", manager)
        return body["items"] if status == 200 and body["items"] else None

    return wait_for(listed, what=f"an annotation of {task_id}")


def user_id(stack: DevStack, role: str) -> str:
    status, me = http(stack, "GET", "/me", demo_token(stack, role))
    assert status == 200, me
    return str(me["user_id"])


def new_project(
    stack: DevStack,
    name: str,
    media_types: list[str],
    controls: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    members: tuple[str, ...] = ("annotator", "reviewer"),
    settings: dict[str, Any] | None = None,
    media: list[Path] = [],  # noqa: B006 (read only)
) -> str:
    """A project the demo manager creates through the API, with ``members`` (demo roles, each
    with the project role of the same name) and ``tasks`` (their ``data``): its id, once every
    task is queued (leasable). ``media`` files are uploaded under the project's prefix of the
    data bucket, where ingest makes a task of each."""
    manager = demo_token(stack, "manager")
    body: dict[str, Any] = {"name": name, "media_types": media_types, "label_config": {"controls": controls}}
    if settings:
        body["settings"] = settings
    status, project = http(stack, "POST", "/projects", manager, body)
    assert status == 201, project
    pid = str(project["project_id"])
    for role in members:
        status, added = http(
            stack,
            "POST",
            f"/projects/{pid}/members",
            manager,
            {"user_id": user_id(stack, role), "role": role},
        )
        assert status in (200, 201), added
    for start in range(0, len(tasks), 1000):
        status, created = http(
            stack,
            "POST",
            f"/projects/{pid}/tasks",
            manager,
            [{"data": d} for d in tasks[start : start + 1000]],
        )
        assert status in (200, 201), created
    spec = local_spec()
    s3 = aws_client(stack, "s3")
    for file in media:
        key = f"{spec.upload_prefix}{pid}/{file.name}"
        s3.put_object(
            Bucket=spec.buckets[spec.uploads.bucket].name,
            Key=key,
            Body=file.read_bytes(),
            ContentType="image/png",
        )
    expected = len(tasks) + len(media)

    def queued() -> bool:
        status, stats = http(stack, "GET", f"/projects/{pid}/stats", manager)
        return status == 200 and stats["by_status"].get("queued", 0) >= expected

    wait_for(queued, timeout_s=300, what=f"{expected} queued tasks in {name}")
    return pid


def shapes(count: int) -> list[Path]:
    """The first ``count`` images of the shapes dataset (the repository's copy when ../shared is absent)."""
    return sorted((datasets_dir() / "images" / "shapes").glob("*.png"))[:count]
